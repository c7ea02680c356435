package grpc_test

import (
	"log/slog"
	"runtime"
	"strings"
	"testing"

	grpcgo "google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/grpc/internal/testpb"
)

// echoWithDocs returns the test .proto's descriptor with a comment on the Echo service
// (service 0, path [6, 0]) and on its first method ([6, 0, 2, 0]), changed by edit.
func echoWithDocs(t testing.TB, edit func(*descriptorpb.FileDescriptorProto)) []byte {
	t.Helper()
	fd := protodesc.ToFileDescriptorProto(testpb.File_transport_grpc_internal_testpb_echo_proto)
	fd.SourceCodeInfo = &descriptorpb.SourceCodeInfo{Location: []*descriptorpb.SourceCodeInfo_Location{
		{Path: []int32{6, 0}, Span: []int32{30, 0, 40, 1}, LeadingComments: proto.String(" Echo echoes, documented.\n")},
		{Path: []int32{6, 0, 2, 0}, Span: []int32{31, 2, 40}, LeadingComments: proto.String(" The first method.\n")},
	}}
	if edit != nil {
		edit(fd)
	}
	b, err := proto.Marshal(fd)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSetFileDocs hands a server good and bad commented files and asks reflection, over
// loopback, for the file of the service: a good file is served with its comments, a bad
// one is logged and the file without comments served instead.
func TestSetFileDocs(t *testing.T) {
	health, err := proto.Marshal(protodesc.ToFileDescriptorProto(healthpb.File_grpc_health_v1_health_proto))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		docs    []byte
		comment string // the service's comment served; "" for none
		log     string // in the error logged; "" for none
	}{
		{name: "commented", docs: echoWithDocs(t, nil), comment: " Echo echoes, documented.\n"},
		{name: "not a descriptor", docs: []byte{0xff, 0xff, 0xff}, log: "decoding the file descriptor with docs"},
		{name: "empty", docs: nil, log: "svckit/transport/grpc"},
		{name: "another service's file", docs: health, log: "does not declare the service svckit.test.Echo"},
		{name: "different messages", docs: echoWithDocs(t, func(fd *descriptorpb.FileDescriptorProto) {
			fd.MessageType[0].Field[0].Name = proto.String("renamed")
		}), log: "differs from the registered"},
		{name: "unknown import", docs: echoWithDocs(t, func(fd *descriptorpb.FileDescriptorProto) {
			fd.Dependency = append(fd.Dependency, "no/such.proto")
		}), log: "no/such.proto"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, nil))
			cc := serve(t, nil, func(g *grpcgo.Server) {
				svcgrpc.Standard(g) // before the service: reflection finds it when asked
				srv := svcgrpc.NewServer(echoService, svcgrpc.WithLogger(logger))
				srv.SetFileDocs(tt.docs)
				newService().register(srv)
				srv.Register(g)
			})
			file := reflectFile(t, cc, echoService)
			var got string
			for _, loc := range file.GetSourceCodeInfo().GetLocation() {
				if len(loc.GetPath()) == 2 && loc.GetPath()[0] == 6 && loc.GetPath()[1] == 0 {
					got = loc.GetLeadingComments()
				}
			}
			if got != tt.comment {
				t.Errorf("service comment %q, want %q", got, tt.comment)
			}
			if tt.log == "" && logs.String() != "" {
				t.Errorf("logged %s", logs)
			}
			if tt.log != "" && (!strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), tt.log)) {
				t.Errorf("logged %q, want an error with %q", logs, tt.log)
			}
		})
	}
}

// TestFileDocsDecodedWhenAsked: SetFileDocs keeps the bytes only, so a bad file is
// reported by the first reflection request, not before and only once; a good file is
// served with its comments again after garbage collections have taken the decoded copy.
func TestFileDocsDecodedWhenAsked(t *testing.T) {
	for _, tt := range []struct {
		name    string
		docs    []byte
		locs    int // source locations served
		errLogs int
	}{
		{name: "good", docs: echoWithDocs(t, nil), locs: 2},
		{name: "bad", docs: []byte{0xff, 0xff, 0xff}, errLogs: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs := &syncBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, nil))
			cc := serve(t, nil, func(g *grpcgo.Server) {
				srv := svcgrpc.NewServer(echoService, svcgrpc.WithLogger(logger))
				srv.SetFileDocs(tt.docs)
				newService().register(srv)
				srv.Register(g)
				svcgrpc.Standard(g)
			})
			if logs.String() != "" {
				t.Fatalf("logged before reflection was asked: %s", logs)
			}
			for i := range 3 {
				if n := len(reflectFile(t, cc, echoService).GetSourceCodeInfo().GetLocation()); n != tt.locs {
					t.Errorf("request %d: %d source locations, want %d", i, n, tt.locs)
				}
				runtime.GC()
				runtime.GC()
			}
			if n := strings.Count(logs.String(), "level=ERROR"); n != tt.errLogs {
				t.Errorf("%d error lines, want %d: %s", n, tt.errLogs, logs)
			}
		})
	}
}

// TestReflectionEitherOrder registers the commented service before and after Standard:
// reflection looks the services up when asked, so both serve the comments.
func TestReflectionEitherOrder(t *testing.T) {
	for _, standardFirst := range []bool{true, false} {
		cc := serve(t, nil, func(g *grpcgo.Server) {
			if standardFirst {
				svcgrpc.Standard(g)
			}
			srv := svcgrpc.NewServer(echoService)
			srv.SetFileDocs(echoWithDocs(t, nil))
			newService().register(srv)
			srv.Register(g)
			if !standardFirst {
				svcgrpc.Standard(g)
			}
		})
		for _, symbol := range []string{echoService, echoService + ".Echo", "svckit.test.EchoRequest"} {
			if n := len(reflectFile(t, cc, symbol).GetSourceCodeInfo().GetLocation()); n != 2 {
				t.Errorf("Standard first %v: %s: %d source locations, want 2", standardFirst, symbol, n)
			}
		}
	}
}

// reflectFile asks grpc.reflection.v1 on cc for the file that declares symbol.
func reflectFile(t *testing.T, cc *grpcgo.ClientConn, symbol string) *descriptorpb.FileDescriptorProto {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stream.CloseSend() }()
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	files := resp.GetFileDescriptorResponse().GetFileDescriptorProto()
	if len(files) == 0 {
		t.Fatalf("no file for %s: %v", symbol, resp)
	}
	var fd descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(files[0], &fd); err != nil {
		t.Fatal(err)
	}
	return &fd
}

// BenchmarkReflection asks for the file of the Echo service over one reflection stream on
// loopback: grpc-go's own reflection.Register (the global registry, no comments) against
// Standard with a commented file, on plain grpc.Servers so that only reflection differs.
func BenchmarkReflection(b *testing.B) {
	docs := echoWithDocs(b, nil)
	for _, bc := range []struct {
		name     string
		register func(*grpcgo.Server)
	}{
		{"grpc-go", func(g *grpcgo.Server) {
			g.RegisterService(&bareDesc, nil)
			reflection.Register(g)
		}},
		{"svckit-docs", func(g *grpcgo.Server) {
			srv := svcgrpc.NewServer(echoService)
			srv.SetFileDocs(docs)
			newService().register(srv)
			srv.Register(g)
			svcgrpc.Standard(g)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cc := benchConn(b, bc.register)
			stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: echoService}}
			b.ReportAllocs()
			for b.Loop() {
				if err := stream.Send(req); err != nil {
					b.Fatal(err)
				}
				resp, err := stream.Recv()
				if err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
					b.Fatal(err, resp)
				}
			}
		})
	}
}

// BenchmarkSetFileDocs is the start-up cost of handing a server its commented file:
// decoding, building the descriptor and comparing it with the registered one.
func BenchmarkSetFileDocs(b *testing.B) {
	docs := echoWithDocs(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		svcgrpc.NewServer(echoService).SetFileDocs(docs)
	}
}
