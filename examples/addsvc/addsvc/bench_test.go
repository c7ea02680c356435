package addsvc_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/examples/addsvc/addsvc"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// BenchmarkGRPCSum calls Sum through the generated gRPC client and server on loopback,
// without middleware: the cost of the generated conversions and the transport.
func BenchmarkGRPCSum(b *testing.B) {
	b.ReportAllocs()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	g := grpc.NewServer()
	s := sgrpc.NewServer(addsvc.GRPCService)
	addsvc.RegisterGRPC(s, addsvc.MakeEndpoints(addsvc.New()))
	s.Register(g)
	go func() { _ = g.Serve(ln) }()
	defer g.Stop()
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	e := addsvc.NewGRPCClient(cc)
	ctx := context.Background()
	for b.Loop() {
		if r, err := e.Sum(ctx, addsvc.SumRequest{A: 1, B: 2}); err != nil || r.V != 3 {
			b.Fatal(r, err)
		}
	}
}
