package gen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	alphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/internal/gen/testdata/golden/shapes"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// reflectionCases are generated services whose doc comments gRPC reflection must serve:
// the comment of the interface (the service), of a method, and of a struct field when the
// package has one, as the Go source has them.
var reflectionCases = []struct {
	name     string
	source   string // the Go file that declares the interface and the struct
	iface    string // Go interface
	service  string // gRPC service
	method   string
	register func(*sgrpc.Server)
	goStruct string // Go struct with a documented field, and the field
	goField  string
	message  string // its protobuf message and field
	field    string
}{
	{
		name: "addsvc", source: "../../examples/addsvc/addsvc/service.go",
		iface: "Service", service: addsvc.GRPCService, method: "Range",
		register: func(s *sgrpc.Server) { addsvc.RegisterGRPC(s, addsvc.MakeEndpoints(addsvc.New())) },
	},
	{
		name: "shapes", source: "testdata/golden/shapes/shapes.go",
		iface: "Service", service: shapes.GRPCService, method: "Get",
		register: func(s *sgrpc.Server) { shapes.RegisterGRPC(s, shapes.MakeEndpoints(shapesEcho{})) },
		goStruct: "Profile", goField: "Name", message: "shapes.Profile", field: "name",
	},
}

// TestReflectionServesDocComments serves generated services on a grpc.Server with
// svckit's reflection ([sgrpc.Standard], registered before the services, as an App does)
// over loopback, asks for the file of each service with the grpc.reflection.v1 and
// v1alpha clients, and checks that the comments of the service, a method and a field are
// the Go doc comments.
func TestReflectionServesDocComments(t *testing.T) {
	docs := func(t *testing.T, file *descriptorpb.FileDescriptorProto) protoreflect.FileDescriptor {
		t.Helper()
		fd, err := protodesc.NewFile(file, protoregistry.GlobalFiles)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(file.GetSourceCodeInfo().GetLocation()); n == 0 {
			t.Fatalf("%s came without SourceCodeInfo", file.GetName())
		}
		return fd
	}
	for _, tc := range reflectionCases {
		t.Run(tc.name, func(t *testing.T) {
			cc := serveWithReflection(t, tc.service, tc.register)
			src := goDocs(t, tc.source)
			for _, ask := range []struct {
				name string
				file func(t *testing.T, symbol string) *descriptorpb.FileDescriptorProto
			}{{"v1", reflectV1(cc)}, {"v1alpha", reflectV1Alpha(cc)}} {
				t.Run(ask.name, func(t *testing.T) {
					for _, symbol := range []string{tc.service, tc.service + "." + tc.method} {
						fd := docs(t, ask.file(t, symbol))
						sd := fd.Services().ByName(protoreflect.FullName(tc.service).Name())
						if sd == nil {
							t.Fatalf("the file of %s does not declare it", symbol)
						}
						check(t, tc.service, fd.SourceLocations().ByDescriptor(sd).LeadingComments, src[tc.iface])
						md := sd.Methods().ByName(protoreflect.Name(tc.method))
						check(t, string(md.FullName()), fd.SourceLocations().ByDescriptor(md).LeadingComments, src[tc.iface+"."+tc.method])
					}
					if tc.message == "" {
						return
					}
					fd := docs(t, ask.file(t, tc.message))
					m := fd.Messages().ByName(protoreflect.FullName(tc.message).Name())
					f := m.Fields().ByName(protoreflect.Name(tc.field))
					check(t, string(f.FullName()), fd.SourceLocations().ByDescriptor(f).LeadingComments, src[tc.goStruct+"."+tc.goField])
				})
			}
		})
	}
}

// TestReflectionFallsBack checks that reflection still serves files without comments,
// from the global registry, and refuses unknown names with NOT_FOUND.
func TestReflectionFallsBack(t *testing.T) {
	cc := serveWithReflection(t, addsvc.GRPCService, func(s *sgrpc.Server) {
		addsvc.RegisterGRPC(s, addsvc.MakeEndpoints(addsvc.New()))
	})
	ask := reflectV1(cc)
	for _, tc := range []struct{ symbol, file string }{
		{"grpc.health.v1.Health", "grpc/health/v1/health.proto"},
		{"grpc.health.v1.HealthCheckRequest", "grpc/health/v1/health.proto"},
		{"grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"},
	} {
		if got := ask(t, tc.symbol).GetName(); got != tc.file {
			t.Errorf("file of %s: %q, want %q", tc.symbol, got, tc.file)
		}
	}
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []*reflectionpb.ServerReflectionRequest{
		{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "addsvc.Nope"}},
		{MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: "addsvc/nope.proto"}},
	} {
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := codes.Code(resp.GetErrorResponse().GetErrorCode()); got != codes.NotFound {
			t.Errorf("%v: code %v, want NotFound: %v", req, got, resp)
		}
	}
	// The commented file is found by its name too.
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileByFilename{FileByFilename: "addsvc/addsvc.proto"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	file := decodeFile(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto())
	if file.GetName() != "addsvc/addsvc.proto" || len(file.GetSourceCodeInfo().GetLocation()) == 0 {
		t.Errorf("addsvc/addsvc.proto by name: %q with %d source locations", file.GetName(), len(file.GetSourceCodeInfo().GetLocation()))
	}
}

// serveWithReflection serves a generated service on loopback the way an App does:
// sgrpc.Standard first, the service registered after it.
func serveWithReflection(t *testing.T, service string, register func(*sgrpc.Server)) *grpc.ClientConn {
	t.Helper()
	g := sgrpc.NewGRPCServer(nil)
	sgrpc.Standard(g)
	s := sgrpc.NewServer(service)
	register(s)
	s.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// reflectV1 returns a function that asks grpc.reflection.v1 for the file that declares a
// symbol.
func reflectV1(cc *grpc.ClientConn) func(t *testing.T, symbol string) *descriptorpb.FileDescriptorProto {
	return func(t *testing.T, symbol string) *descriptorpb.FileDescriptorProto {
		t.Helper()
		stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			t.Fatalf("%s: %v", symbol, e)
		}
		return decodeFile(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto())
	}
}

// reflectV1Alpha is reflectV1 with grpc.reflection.v1alpha, which older clients use.
func reflectV1Alpha(cc *grpc.ClientConn) func(t *testing.T, symbol string) *descriptorpb.FileDescriptorProto {
	return func(t *testing.T, symbol string) *descriptorpb.FileDescriptorProto {
		t.Helper()
		stream, err := alphapb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&alphapb.ServerReflectionRequest{MessageRequest: &alphapb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e := resp.GetErrorResponse(); e != nil {
			t.Fatalf("%s: %v", symbol, e)
		}
		return decodeFile(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto())
	}
}

// decodeFile decodes the first file of a reflection answer: the one asked for, before its
// dependencies.
func decodeFile(t *testing.T, files [][]byte) *descriptorpb.FileDescriptorProto {
	t.Helper()
	if len(files) == 0 {
		t.Fatal("no file in the answer")
	}
	var file descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(files[0], &file); err != nil {
		t.Fatal(err)
	}
	return &file
}

// goDocs returns the doc comments of a Go file's types, interface methods and struct
// fields, by "Type", "Type.Method" and "Type.Field", as go/ast's CommentGroup.Text gives
// them (directives left out).
func goDocs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, sp := range gd.Specs {
			ts := sp.(*ast.TypeSpec)
			doc := ts.Doc
			if doc == nil && len(gd.Specs) == 1 {
				doc = gd.Doc
			}
			out[ts.Name.Name] = doc.Text()
			var list *ast.FieldList
			switch tt := ts.Type.(type) {
			case *ast.InterfaceType:
				list = tt.Methods
			case *ast.StructType:
				list = tt.Fields
			}
			if list == nil {
				continue
			}
			for _, fl := range list.List {
				for _, n := range fl.Names {
					out[ts.Name.Name+"."+n.Name] = fl.Doc.Text()
				}
			}
		}
	}
	return out
}

// check compares a protobuf leading comment with a Go doc comment: protoc keeps the space
// after each "//", go/ast drops it.
func check(t *testing.T, what, proto, goDoc string) {
	t.Helper()
	if goDoc == "" {
		t.Fatalf("%s: the Go source has no doc comment to compare with", what)
	}
	lines := strings.Split(strings.TrimSuffix(proto, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, " ")
	}
	if got, want := strings.Join(lines, "\n"), strings.TrimSuffix(goDoc, "\n"); got != want {
		t.Errorf("%s: reflection serves the comment %q, the Go doc comment is %q", what, got, want)
	}
}
