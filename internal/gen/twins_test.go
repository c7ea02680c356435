package gen

import (
	"context"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	acme "github.com/svckit/svckit/internal/gen/testdata/golden/twins/acme/users"
	globex "github.com/svckit/svckit/internal/gen/testdata/golden/twins/globex/users"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

type acmeUsers struct{}

func (acmeUsers) Get(_ context.Context, id string) (acme.User, error) {
	return acme.User{ID: id, Name: "acme " + id}, nil
}

type globexUsers struct{}

func (globexUsers) Get(_ context.Context, id string) (globex.User, error) {
	return globex.User{ID: id, Name: "globex " + id}, nil
}

// TestTwinsLinkTogether links two generated packages with one Go package name, users, and
// one file name, users.proto, into this test binary. Registered as a bare "users.proto",
// the second one's init panicked ("proto: file "users.proto" is already registered")
// before any test ran; registered under their protobuf packages' directories, both load,
// and a gateway can serve or call both.
func TestTwinsLinkTogether(t *testing.T) {
	for _, tc := range []struct {
		path, service string
	}{
		{"acme/users/v1/users.proto", "acme.users.v1.UsersService"},
		{"globex/users/v1/users.proto", "globex.users.v1.UsersService"},
	} {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(tc.path)
		if err != nil {
			t.Errorf("%s is not registered: %v", tc.path, err)
			continue
		}
		if fd.Services().ByName(protoreflect.FullName(tc.service).Name()) == nil || string(fd.Package())+"."+string(fd.Services().Get(0).Name()) != tc.service {
			t.Errorf("%s: services %v, want %s", tc.path, fd.Services(), tc.service)
		}
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		get  func(t *testing.T) (string, error)
		want string
	}{
		{"acme", func(t *testing.T) (string, error) {
			_, cc := serveGolden(t, "acme", acme.UsersGRPCService,
				func(s *shttp.Server) { acme.RegisterUsersHTTP(s, acme.MakeUsersEndpoints(acmeUsers{})) },
				func(s *sgrpc.Server) { acme.RegisterUsersGRPC(s, acme.MakeUsersEndpoints(acmeUsers{})) })
			u, err := acme.NewUsersClient(acme.NewUsersGRPCClient(cc)).Get(ctx, "7")
			return u.Name, err
		}, "acme 7"},
		{"globex", func(t *testing.T) (string, error) {
			_, cc := serveGolden(t, "globex", globex.UsersGRPCService,
				func(s *shttp.Server) { globex.RegisterUsersHTTP(s, globex.MakeUsersEndpoints(globexUsers{})) },
				func(s *sgrpc.Server) { globex.RegisterUsersGRPC(s, globex.MakeUsersEndpoints(globexUsers{})) })
			u, err := globex.NewUsersClient(globex.NewUsersGRPCClient(cc)).Get(ctx, "7")
			return u.Name, err
		}, "globex 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.get(t)
			if err != nil || got != tc.want {
				t.Fatalf("Get over gRPC = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
