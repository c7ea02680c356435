package gen

import (
	"context"
	"os"
	"path/filepath"
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

// TestProtoMovesWithItsPackage checks that regeneration removes a .proto the generator
// wrote where it no longer belongs: the bare pb/<name>.proto of earlier versions, and the
// file of a protobuf package the //svckit:grpc directive no longer names.
func TestProtoMovesWithItsPackage(t *testing.T) {
	src := func(grpcName string) string {
		return "// Package inv counts things.\npackage inv\n\nimport \"context\"\n\n// Service counts.\n//\n//svckit:grpc " +
			grpcName + "\ntype Service interface {\n\t// Count counts.\n\tCount(ctx context.Context, what string) (n int, err error)\n}\n"
	}
	dir := tempModule(t, map[string]string{"inv/service.go": src("inv.v1.InvService")})
	pkg := filepath.Join(dir, "inv")
	legacy := filepath.Join(pkg, "pb", "inv.proto")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, []byte(header+"\nsyntax = \"proto3\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	handWritten := filepath.Join(pkg, "pb", "extra", "mine.proto")
	if err := os.MkdirAll(filepath.Dir(handWritten), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(handWritten, []byte("syntax = \"proto3\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		grpcName     string
		want, absent string
	}{
		{"inv.v1.InvService", "pb/inv/v1/inv.proto", "pb/inv.proto"},
		{"inv.v2.InvService", "pb/inv/v2/inv.proto", "pb/inv/v1/inv.proto"},
	} {
		if err := os.WriteFile(filepath.Join(pkg, "service.go"), []byte(src(tc.grpcName)), 0o644); err != nil {
			t.Fatal(err)
		}
		files, err := Generate(pkg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Write(files); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(pkg, filepath.FromSlash(tc.want))); err != nil {
			t.Errorf("%s: %v", tc.grpcName, err)
		}
		if _, err := os.Stat(filepath.Join(pkg, filepath.FromSlash(tc.absent))); !os.IsNotExist(err) {
			t.Errorf("%s: %s is still there (%v)", tc.grpcName, tc.absent, err)
		}
		if _, err := os.Stat(handWritten); err != nil {
			t.Errorf("%s: the hand-written .proto is gone: %v", tc.grpcName, err)
		}
	}
}
