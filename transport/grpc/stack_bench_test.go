package grpc_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/observe/otlp/otlptest"
	"github.com/svckit/svckit/resilience"
	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/grpc/internal/testpb"
	"github.com/svckit/svckit/transport/meta"
)

// BenchmarkServerStack compares the server side of a unary call through svckit's full
// production stack — svckit.App's default chain: a span per call sampled at 100% and
// exported over OTLP to a loopback sink, the JSON access-log line, RED metrics, the
// timeout and recovery, a request id per call, NewGRPCServer's stream workers — with bare
// grpc-go. Both are called by the same bare grpc-go client with 16 callers, so the
// difference in allocs/op and cpu-µs/op (process CPU time from getrusage, both ends of
// the call) is the server stack's. The callers send no request id, as bare grpc-go
// clients do, so svckit makes one per call (which only a failed call would return); in
// the "+request-id" runs every call carries a new x-request-id, as svckit's client sends.
func BenchmarkServerStack(b *testing.B) {
	otlptest.Discard(b)
	b.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	for _, withID := range []bool{false, true} {
		suffix := ""
		if withID {
			suffix = "+request-id"
		}
		b.Run("grpc-go"+suffix, func(b *testing.B) { benchBareStack(b, withID) })
		b.Run("svckit"+suffix, func(b *testing.B) { benchSvckitStack(b, withID) })
	}
}

func benchBareStack(b *testing.B, withID bool) {
	g := grpcgo.NewServer()
	g.RegisterService(&bareDesc, struct{}{})
	runStackBench(b, g, withID)
}

func benchSvckitStack(b *testing.B, withID bool) {
	ctx := context.Background()
	tp, err := observe.NewTracerProvider(ctx, observe.TracingOptions{Service: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(ctx) }()
	if tp.Lean() == nil {
		b.Fatal("not the lean OTLP provider")
	}
	logger := observe.NewLogger(io.Discard, observe.LogOptions{Format: "json", Service: "bench"})
	metrics, err := observe.NewMetrics(observe.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	srv := svcgrpc.NewServer(echoService, svcgrpc.WithServiceLabel("bench"), svcgrpc.WithLogger(logger),
		svcgrpc.WithMiddleware(
			observe.Tracing(tp), observe.AccessLog(logger), metrics.Middleware(),
			resilience.Timeout(10*time.Second), resilience.Recover(logger)))
	echo := func(_ context.Context, m msg) (msg, error) { return msg{m.Text, m.N + 1}, nil }
	svcgrpc.Unary(srv, "Echo", endpoint.Endpoint[msg, msg](echo), decEchoRequest, encEchoReply)
	g := svcgrpc.NewGRPCServer(logger)
	srv.Register(g)
	runStackBench(b, g, withID)
}

func runStackBench(b *testing.B, g *grpcgo.Server, withID bool) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	call := func() error {
		ctx := context.Background()
		if withID {
			ctx = metadata.AppendToOutgoingContext(ctx, meta.RequestIDMetadataKey, meta.NewRequestID())
		}
		var out testpb.EchoReply
		return cc.Invoke(ctx, "/svckit.test.Echo/Echo", &testpb.EchoRequest{Text: "hello", N: 1}, &out)
	}
	if err := call(); err != nil {
		b.Fatal(err)
	}
	const callers = 16
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpumeter.Process()
	var wg sync.WaitGroup
	next := make(chan struct{}, callers)
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			for range next {
				if err := call(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(cpumeter.Process()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}
