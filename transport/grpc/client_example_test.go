package grpc_test

import (
	"context"
	"fmt"
	"net"

	grpcgo "google.golang.org/grpc"

	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/grpc/internal/testpb"
)

// A client connection with svckit's defaults — fixed flow-control windows, matching the
// servers NewGRPCServer makes — and plaintext credentials.
func ExampleDialOptions() {
	g := svcgrpc.NewGRPCServer(nil)
	srv := svcgrpc.NewServer("svckit.test.Echo")
	svcgrpc.Unary(srv, "Echo",
		func(_ context.Context, s string) (string, error) { return "hello, " + s, nil },
		func(r *testpb.EchoRequest) (string, error) { return r.GetText(), nil },
		func(s string) (*testpb.EchoReply, error) { return &testpb.EchoReply{Text: s}, nil })
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	cc, err := grpcgo.NewClient(lis.Addr().String(), append(svcgrpc.DialOptions(), svcgrpc.DialCredentials(nil))...)
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	echo := svcgrpc.UnaryCall(svcgrpc.NewClient(cc, "svckit.test.Echo"), "Echo",
		func(s string) (*testpb.EchoRequest, error) { return &testpb.EchoRequest{Text: s}, nil },
		func(r *testpb.EchoReply) (string, error) { return r.GetText(), nil })
	fmt.Println(echo(context.Background(), "gopher"))
	// Output: hello, gopher <nil>
}
