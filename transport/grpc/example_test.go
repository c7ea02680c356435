package grpc_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"strings"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/svcerr"
	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/grpc/internal/testpb"
)

// A unary and a server-streaming method served by svckit over gRPC and called through
// svckit clients. The endpoints are plain functions; enc and dec functions convert between
// them and the generated messages.
func Example() {
	shout := func(_ context.Context, text string) (string, error) {
		if text == "" {
			return "", svcerr.Invalid("text", "is required")
		}
		return strings.ToUpper(text), nil
	}
	count := func(_ context.Context, n int64) (iter.Seq2[int64, error], error) {
		return func(yield func(int64, error) bool) {
			for i := range n {
				if !yield(i, nil) {
					return
				}
			}
		}, nil
	}

	// The server side.
	srv := svcgrpc.NewServer("svckit.test.Echo", svcgrpc.WithServiceLabel("echo"))
	svcgrpc.Unary(srv, "Echo", shout,
		func(r *testpb.EchoRequest) (string, error) { return r.GetText(), nil },
		func(s string) (*testpb.EchoReply, error) { return &testpb.EchoReply{Text: s}, nil })
	svcgrpc.ServerStream(srv, "Count", count,
		func(r *testpb.CountRequest) (int64, error) { return r.GetN(), nil },
		func(i int64) (*testpb.CountReply, error) { return &testpb.CountReply{I: i}, nil })
	g := svcgrpc.NewGRPCServer(nil)
	srv.Register(g)
	health := svcgrpc.Standard(g) // grpc.health.v1 and reflection
	defer health.Shutdown()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	// The client side.
	cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	c := svcgrpc.NewClient(cc, "svckit.test.Echo", svcgrpc.WithClientServiceLabel("echo"))
	callShout := svcgrpc.UnaryCall(c, "Echo",
		func(s string) (*testpb.EchoRequest, error) { return &testpb.EchoRequest{Text: s}, nil },
		func(r *testpb.EchoReply) (string, error) { return r.GetText(), nil })
	callCount := svcgrpc.StreamCall(c, "Count",
		func(n int64) (*testpb.CountRequest, error) { return &testpb.CountRequest{N: n}, nil },
		func(r *testpb.CountReply) (int64, error) { return r.GetI(), nil })

	ctx := context.Background()
	loud, err := callShout(ctx, "hello")
	fmt.Println(loud, err)

	_, err = callShout(ctx, "")
	var e *svcerr.Error
	if errors.As(err, &e) {
		fmt.Println(e.Kind, e.Message, e.Fields)
	}

	items, _ := callCount(ctx, 3)
	for i, err := range items {
		fmt.Println(i, err)
	}
	// Output:
	// HELLO <nil>
	// invalid_argument text: is required [{text is required}]
	// 0 <nil>
	// 1 <nil>
	// 2 <nil>
}
