package balancer_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/examples/addsvc/pb"
	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/observe/otlp/otlptest"
	"github.com/svckit/svckit/resilience"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/meta"
)

// bareAdd serves addsvc.Add/Sum with grpc-go alone, as generated code would, so that the
// benchmarks measure the clients only.
var bareAdd = grpcgo.ServiceDesc{
	ServiceName: addsvc.GRPCService,
	HandlerType: (*any)(nil),
	Methods: []grpcgo.MethodDesc{{
		MethodName: "Sum",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpcgo.UnaryServerInterceptor) (any, error) {
			in := new(pb.SumRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			return &pb.SumResponse{V: in.GetA() + in.GetB()}, nil
		},
	}},
}

func bareServer(b testing.TB) string {
	g := grpcgo.NewServer()
	g.RegisterService(&bareAdd, struct{}{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	b.Cleanup(g.Stop)
	return ln.Addr().String()
}

type sumFunc func(ctx context.Context, a, b int64) error

// exportingProvider returns the tracer provider a deployed service has when it samples
// every call: observe.NewTracerProvider with the default OTLP http/protobuf exporter
// (the lean provider), exporting to a loopback collector that drops the spans. The
// collector's CPU counts in the benchmark's figures, as a real one's would not.
func exportingProvider(b testing.TB) trace.TracerProvider {
	otlptest.Discard(b)
	tp, err := observe.NewTracerProvider(context.Background(), observe.TracingOptions{Service: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if tp.Lean() == nil {
		b.Fatal("observe.NewTracerProvider: not the lean OTLP provider")
	}
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// benchClients returns a bare grpc-go call to one server and a call through svckit's full
// client stack to two servers found in a NATS KV registry: tracing (sampled as given),
// retry, balancer (P2C), per-instance circuit breaker, svckit gRPC client.
func benchClients(b testing.TB, sampler sdktrace.Sampler) (bare, stack sumFunc) {
	return benchClientsN(b, sampler, 2)
}

func benchClientsN(b testing.TB, sampler sdktrace.Sampler, instances int) (bare, stack sumFunc) {
	return benchClientsWith(b, sampler, instances, true)
}

// benchClientsWith is benchClientsN; without full, the stack is the balancer and the svckit
// client only (no tracing, retry or breaker).
func benchClientsWith(b testing.TB, sampler sdktrace.Sampler, instances int, full bool) (bare, stack sumFunc) {
	addrs := []string{bareServer(b)}
	for len(addrs) < instances {
		addrs = append(addrs, bareServer(b))
	}
	addr1 := addrs[0]
	cc, err := grpcgo.NewClient(addr1, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	bare = func(ctx context.Context, x, y int64) error {
		var out pb.SumResponse
		return cc.Invoke(ctx, "/addsvc.Add/Sum", &pb.SumRequest{A: x, B: y}, &out)
	}

	// Discovery: both servers register in the embedded NATS server's registry.
	ctx := context.Background()
	ns, err := natsserver.Start(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ns.Shutdown(context.Background()) })
	nc, err := ns.Connect(nats.MaxReconnects(-1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	reg, err := natskv.New(ctx, nc)
	if err != nil {
		b.Fatal(err)
	}
	for i, addr := range addrs {
		r, err := reg.Register(ctx, discovery.Instance{Service: "addsvc", ID: string(rune('a' + i)), Addr: addr}, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Deregister(context.Background()) })
	}
	wctx, cancel := context.WithCancel(ctx)
	b.Cleanup(cancel)
	bal, err := balancer.Watch(wctx, reg, "addsvc")
	if err != nil {
		b.Fatal(err)
	}
	for len(bal.Instances()) < instances {
		time.Sleep(time.Millisecond)
	}

	var tp trace.TracerProvider
	if sampler.Description() == sdktrace.AlwaysSample().Description() {
		tp = exportingProvider(b)
	} else {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
		tp = sdk
	}
	breaker := resilience.NewBreaker(resilience.BreakerConfig{})
	bal.OnRemove(breaker.Forget)
	pool := balancer.NewConnPool(bal)
	b.Cleanup(func() { _ = pool.Close() })
	var outer, inner []endpoint.Middleware
	if full {
		outer = []endpoint.Middleware{observe.Tracing(tp), resilience.Retry(resilience.RetryConfig{})}
		inner = []endpoint.Middleware{breaker.Middleware()}
	}
	sum := balancer.Endpoint(endpoint.Info{Service: "addsvc", Method: "Sum", Transport: "grpc", Idempotent: true}, bal,
		func(inst discovery.Instance) (endpoint.Endpoint[addsvc.SumRequest, addsvc.SumResponse], error) {
			cc, err := pool.Get(inst.Addr)
			if err != nil {
				return nil, err
			}
			return addsvc.NewGRPCClient(cc, sgrpc.WithClientMiddleware(inner...)).Sum, nil
		},
		outer...)
	stack = func(ctx context.Context, x, y int64) error {
		_, err := sum(ctx, addsvc.SumRequest{A: x, B: y})
		return err
	}
	return bare, stack
}

// BenchmarkClient compares one unary call over loopback through svckit's full client stack
// (NATS KV discovery, P2C balancer, retry, per-instance breaker, tracing) with a bare
// grpc-go call to the same kind of server. The "ratio" sub-benchmarks run both in
// alternating blocks in one run and report the stack's throughput as a fraction of the
// bare client's (stack/bare), the process's CPU time per call of each with their
// ratio (cpu-stack/bare, bare over stack), the steadier figure on a shared machine (the
// target is at least 0.9), and the heap bytes and objects allocated per call, servers
// included (bare-B/call, stack-B/call, bare-allocs/call, stack-allocs/call).
func BenchmarkClient(b *testing.B) {
	samplers := []struct {
		name    string
		sampler sdktrace.Sampler
	}{
		{"unsampled", sdktrace.ParentBased(sdktrace.NeverSample())}, // svckit's default without an exporter
		{"sampled", sdktrace.AlwaysSample()},
	}
	for _, s := range samplers {
		b.Run("stack-"+s.name, func(b *testing.B) {
			_, stack := benchClients(b, s.sampler)
			run(b, stack)
		})
	}
	b.Run("grpc-go", func(b *testing.B) {
		bare, _ := benchClients(b, sdktrace.NeverSample())
		run(b, bare)
	})
	// The svckit gRPC client alone (no discovery, balancer, retry, breaker or tracing), to
	// tell the transport's share of the stack's cost from the rest.
	b.Run("ratio-client-only-seq", func(b *testing.B) {
		bare, _ := benchClientsN(b, samplers[0].sampler, 1)
		cc, err := grpcgo.NewClient(bareServer(b), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		sum := addsvc.NewGRPCClient(cc).Sum
		ratio(b, bare, func(ctx context.Context, x, y int64) error {
			_, err := sum(ctx, addsvc.SumRequest{A: x, B: y})
			return err
		}, 1)
	})
	// Discovery and the balancer around the svckit client, without tracing, retry and
	// breaker: the balancer's share.
	b.Run("ratio-balanced-client-seq", func(b *testing.B) {
		bare, stack := benchClientsWith(b, samplers[0].sampler, 2, false)
		ratio(b, bare, stack, 1)
	})
	// The floor the stack's wire metadata sets: a bare grpc-go call against the same call
	// carrying what every call of the unsampled stack sends, a new x-request-id and a
	// traceparent (grpc-go encodes them into HPACK on one end and decodes them into an
	// incoming metadata map on the other), with no svckit code at all.
	b.Run("ratio-headers-seq", func(b *testing.B) {
		bare, _ := benchClientsN(b, samplers[0].sampler, 1)
		ratio(b, bare, withHeaders(b, bareServer(b)), 1)
	})
	b.Run("ratio-unsampled-seq-1instance", func(b *testing.B) {
		bare, stack := benchClientsN(b, samplers[0].sampler, 1)
		ratio(b, bare, stack, 1)
	})
	for _, s := range samplers {
		for _, par := range []int{1, 8} {
			name := "ratio-" + s.name + "-seq"
			if par > 1 {
				name = "ratio-" + s.name + "-parallel8"
			}
			b.Run(name, func(b *testing.B) {
				bare, stack := benchClients(b, s.sampler)
				ratio(b, bare, stack, par)
			})
		}
	}
}

// withHeaders returns a bare grpc-go call to addr that carries the metadata svckit's client
// stack sends on every call outside a sampled trace: a new request id and a traceparent
// with a new span id.
func withHeaders(b testing.TB, addr string) sumFunc {
	cc, err := grpcgo.NewClient(addr, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	return func(ctx context.Context, x, y int64) error {
		var tid trace.TraceID // a new trace per call, as a call outside any trace makes
		var sid trace.SpanID
		binary.LittleEndian.PutUint64(tid[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], rand.Uint64())
		binary.LittleEndian.PutUint64(sid[:], rand.Uint64())
		tp := "00-" + tid.String() + "-" + sid.String() + "-00"
		ctx = metadata.AppendToOutgoingContext(ctx, meta.RequestIDMetadataKey, meta.NewRequestID(), "traceparent", tp)
		var out pb.SumResponse
		return cc.Invoke(ctx, "/addsvc.Add/Sum", &pb.SumRequest{A: x, B: y}, &out)
	}
}

func run(b *testing.B, call sumFunc) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := call(ctx, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// ratio runs b.N calls of each client with par goroutines, in alternating blocks, and
// reports each one's time per call and stack/bare throughput.
func ratio(b *testing.B, bare, stack sumFunc, par int) {
	ctx := context.Background()
	const block = 200
	var tBare, tStack, cBare, cStack time.Duration
	var hBare, hStack cpumeter.Heap
	var nBare, nStack int
	// timed returns the wall time and the process's CPU time (user + system: client,
	// server, discovery and span processing alike) of n calls, and what the process
	// allocated on the heap meanwhile. On a shared machine the CPU time is the steadier
	// figure.
	timed := func(call sumFunc, n int) (time.Duration, time.Duration, cpumeter.Heap) {
		h0 := cpumeter.ReadHeap()
		cpu0 := cpumeter.Process()
		start := time.Now()
		var wg sync.WaitGroup
		for g := range par {
			wg.Go(func() {
				for i := g; i < n; i += par {
					if err := call(ctx, 1, 2); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		t, c := time.Since(start), cpumeter.Process()-cpu0
		return t, c, cpumeter.ReadHeap().Sub(h0)
	}
	// Warm up both (connections, pools).
	timed(bare, block)
	timed(stack, block)
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		t, c, h := timed(bare, n)
		tBare, cBare, hBare = tBare+t, cBare+c, hBare.Add(h)
		t, c, h = timed(stack, n)
		tStack, cStack, hStack = tStack+t, cStack+c, hStack.Add(h)
		nBare += n
		nStack += n
	}
	b.StopTimer()
	perBare := float64(tBare) / float64(nBare)
	perStack := float64(tStack) / float64(nStack)
	b.ReportMetric(perBare, "bare-ns/call")
	b.ReportMetric(perStack, "stack-ns/call")
	b.ReportMetric(perBare/perStack, "stack/bare")
	cpuBare := float64(cBare) / float64(nBare) / 1000
	cpuStack := float64(cStack) / float64(nStack) / 1000
	b.ReportMetric(cpuBare, "bare-cpu-µs/call")
	b.ReportMetric(cpuStack, "stack-cpu-µs/call")
	b.ReportMetric(cpuBare/cpuStack, "cpu-stack/bare")
	b.ReportMetric(float64(hBare.Bytes)/float64(nBare), "bare-B/call")
	b.ReportMetric(float64(hStack.Bytes)/float64(nStack), "stack-B/call")
	b.ReportMetric(float64(hBare.Objects)/float64(nBare), "bare-allocs/call")
	b.ReportMetric(float64(hStack.Objects)/float64(nStack), "stack-allocs/call")
}
