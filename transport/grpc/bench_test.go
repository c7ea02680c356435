package grpc_test

import (
	"context"
	"net"
	"testing"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/endpoint"
	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/grpc/internal/testpb"
)

// bareDesc serves svckit.test.Echo/Echo with grpc-go alone, as generated code would.
var bareDesc = grpcgo.ServiceDesc{
	ServiceName: "svckit.test.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpcgo.MethodDesc{{
		MethodName: "Echo",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpcgo.UnaryServerInterceptor) (any, error) {
			in := new(testpb.EchoRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			return &testpb.EchoReply{Text: in.GetText(), N: in.GetN() + 1}, nil
		},
	}},
}

// benchConn serves with a plain grpc.Server, like the bare benchmark, so that only the
// transports differ.
func benchConn(b *testing.B, register func(*grpcgo.Server)) *grpcgo.ClientConn {
	g := grpcgo.NewServer()
	register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	b.Cleanup(g.Stop)
	cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	return cc
}

// BenchmarkUnary compares a unary round trip over loopback through svckit's server and
// client (with and without a pass-through middleware on each side) with bare grpc-go.
func BenchmarkUnary(b *testing.B) {
	echo := func(_ context.Context, m msg) (msg, error) { return msg{m.Text, m.N + 1}, nil }
	svckit := func(mws ...endpoint.Middleware) func(*testing.B) {
		return func(b *testing.B) {
			srv := svcgrpc.NewServer(echoService, svcgrpc.WithMiddleware(mws...))
			svcgrpc.Unary(srv, "Echo", echo, decEchoRequest, encEchoReply)
			cc := benchConn(b, func(g *grpcgo.Server) { srv.Register(g) })
			call := svcgrpc.UnaryCall(svcgrpc.NewClient(cc, echoService, svcgrpc.WithClientMiddleware(mws...)),
				"Echo", encEchoRequest, decEchoReply)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := call(ctx, msg{"hello", 1}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("svckit", svckit())
	b.Run("svckit+middleware", svckit(endpoint.Nop, func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) { return next(ctx, req) }
	}))
	b.Run("grpc-go", func(b *testing.B) {
		cc := benchConn(b, func(g *grpcgo.Server) { g.RegisterService(&bareDesc, struct{}{}) })
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			var out testpb.EchoReply
			if err := cc.Invoke(ctx, "/svckit.test.Echo/Echo", &testpb.EchoRequest{Text: "hello", N: 1}, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
