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

// clients are the calls BenchmarkClient compares, all to servers of bareAdd.
type clients struct {
	// bare is a bare grpc-go call over one connection to one server.
	bare sumFunc
	// spread is bare grpc-go calls spread at random over one connection to each of the
	// stack's servers: the connections the stack uses, with no svckit code.
	spread sumFunc
	// stack is a call through svckit's client stack.
	stack sumFunc
}

// benchClients returns the clients for svckit's full client stack to two servers found in
// a NATS KV registry: tracing (sampled as given), retry, balancer (P2C), per-instance
// circuit breaker, svckit gRPC client.
func benchClients(b testing.TB, sampler sdktrace.Sampler) clients {
	return benchClientsN(b, sampler, 2)
}

// benchClientsN is benchClients with the given number of servers.
func benchClientsN(b testing.TB, sampler sdktrace.Sampler, instances int) clients {
	return benchClientsWith(b, sampler, instances, true)
}

// benchClientsWith is benchClientsN; without full, the stack is the balancer and the svckit
// client only (no tracing, retry or breaker).
func benchClientsWith(b testing.TB, sampler sdktrace.Sampler, instances int, full bool) clients {
	addrs := []string{bareServer(b)}
	for len(addrs) < instances {
		addrs = append(addrs, bareServer(b))
	}
	c := clients{bare: spread(b, addrs[0])}
	if len(addrs) > 1 {
		c.spread = spread(b, addrs...)
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
	c.stack = func(ctx context.Context, x, y int64) error {
		_, err := sum(ctx, addsvc.SumRequest{A: x, B: y})
		return err
	}
	return c
}

// BenchmarkClient compares one unary call over loopback through svckit's full client stack
// (NATS KV discovery, P2C balancer, retry, per-instance breaker, tracing) with bare grpc-go
// calls to the same kind of server. The "ratio" sub-benchmarks run the clients in
// alternating blocks in one run and report the stack's throughput as a fraction of the
// bare client's (stack/bare), the process's CPU time per call of each with their
// ratio (cpu-stack/bare, bare over stack), the steadier figure on a shared machine (the
// target is at least 0.9), and the heap bytes and objects allocated per call, servers
// included (bare-B/call, stack-B/call, bare-allocs/call, stack-allocs/call).
//
// The bare call uses one connection. A stack with two servers spreads its calls over two
// connections, which costs grpc-go itself CPU (ratio-spread-seq): for those the stack is
// also compared with bare calls spread over the same two servers (cpu-stack/spread), and
// the 1-instance ratios compare like with like.
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
			run(b, benchClients(b, s.sampler).stack)
		})
		b.Run("stack-"+s.name+"-1instance", func(b *testing.B) {
			run(b, benchClientsN(b, s.sampler, 1).stack)
		})
	}
	b.Run("grpc-go", func(b *testing.B) {
		run(b, benchClients(b, sdktrace.NeverSample()).bare)
	})
	// Bare grpc-go carrying what the stack sends outside a request: see ratio-headers-seq.
	b.Run("grpc-go-headers", func(b *testing.B) {
		benchClients(b, sdktrace.NeverSample())
		run(b, withHeaders(b, bareServer(b)))
	})
	// The svckit gRPC client alone (no discovery, balancer, retry, breaker or tracing), to
	// tell the transport's share of the stack's cost from the rest.
	b.Run("ratio-client-only-seq", func(b *testing.B) {
		bare := benchClientsN(b, samplers[0].sampler, 1).bare
		cc, err := grpcgo.NewClient(bareServer(b), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer cc.Close()
		sum := addsvc.NewGRPCClient(cc).Sum
		ratio(b, 1, clients{bare: bare, stack: func(ctx context.Context, x, y int64) error {
			_, err := sum(ctx, addsvc.SumRequest{A: x, B: y})
			return err
		}})
	})
	// Discovery and the balancer around the svckit client, without tracing, retry and
	// breaker: the balancer's share.
	b.Run("ratio-balanced-client-seq", func(b *testing.B) {
		ratio(b, 1, benchClientsWith(b, samplers[0].sampler, 2, false))
	})
	// Bare grpc-go calls spread at random over two servers against calls to one server:
	// what spreading sequential calls over two connections costs without any svckit code.
	b.Run("ratio-spread-seq", func(b *testing.B) {
		c := benchClientsN(b, samplers[0].sampler, 1)
		ratio(b, 1, clients{bare: c.bare, stack: spread(b, bareServer(b), bareServer(b))})
	})
	// The floor the stack's wire metadata sets: a bare grpc-go call against the same call
	// carrying what every call of the unsampled stack sends outside a request, a
	// traceparent with a new trace (grpc-go encodes it into HPACK on one end and decodes it
	// into an incoming metadata map on the other), with no svckit code at all.
	b.Run("ratio-headers-seq", func(b *testing.B) {
		c := benchClientsN(b, samplers[0].sampler, 1)
		ratio(b, 1, clients{bare: c.bare, stack: withHeaders(b, bareServer(b))})
	})
	// One instance: the stack and the bare call each use one connection to one server.
	for _, s := range samplers {
		b.Run("ratio-"+s.name+"-seq-1instance", func(b *testing.B) {
			ratio(b, 1, benchClientsN(b, s.sampler, 1))
		})
	}
	for _, s := range samplers {
		for _, par := range []int{1, 8} {
			name := "ratio-" + s.name + "-seq"
			if par > 1 {
				name = "ratio-" + s.name + "-parallel8"
			}
			b.Run(name, func(b *testing.B) {
				ratio(b, par, benchClients(b, s.sampler))
			})
		}
	}
}

// withHeaders returns a bare grpc-go call to addr that carries the metadata svckit's client
// stack sends on every call outside a request and a sampled trace: a traceparent with a new
// trace id and span id. (A call inside a request carries the request's x-request-id too.)
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
		ctx = metadata.AppendToOutgoingContext(ctx, "traceparent", "00-"+tid.String()+"-"+sid.String()+"-00")
		var out pb.SumResponse
		return cc.Invoke(ctx, "/addsvc.Add/Sum", &pb.SumRequest{A: x, B: y}, &out)
	}
}

// spread returns a bare grpc-go call over one connection to each of addrs, picked at random
// per call: the connections a balanced client spreads its calls over, with no balancer.
// With sequential calls P2C's least-in-flight comparison is always a tie, broken by each
// instance's moving average of latency, which changes with every call: in this benchmark
// the stack's picks cost grpc-go about what random picks do.
func spread(b testing.TB, addrs ...string) sumFunc {
	ccs := make([]*grpcgo.ClientConn, len(addrs))
	for i, addr := range addrs {
		cc, err := grpcgo.NewClient(addr, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cc.Close() })
		ccs[i] = cc
	}
	return func(ctx context.Context, x, y int64) error {
		var out pb.SumResponse
		return ccs[rand.IntN(len(ccs))].Invoke(ctx, "/addsvc.Add/Sum", &pb.SumRequest{A: x, B: y}, &out)
	}
}

// run runs b.N calls of one client alone (after 500 to warm it up), for a CPU profile of
// one kind of call, and reports the process's CPU time per call (cpu-µs/call).
func run(b *testing.B, call sumFunc) {
	ctx := context.Background()
	for range 500 {
		if err := call(ctx, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := cpumeter.Process()
	for b.Loop() {
		if err := call(ctx, 1, 2); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpumeter.Process()-cpu0)/float64(b.N)/1000, "cpu-µs/call")
}

// tally is what ratio measured of one client.
type tally struct {
	wall, cpu time.Duration
	heap      cpumeter.Heap
	calls     int
}

// ratio runs b.N calls of each of c's clients with par goroutines, in alternating blocks,
// and reports each one's time and allocations per call and the stack's throughput and CPU
// time against the bare client's, and against the spread one's when c has one.
func ratio(b *testing.B, par int, c clients) {
	ctx := context.Background()
	const block = 200
	// timed adds to t the wall time and the process's CPU time (user + system: client,
	// server, discovery and span processing alike) of n calls, and what the process
	// allocated on the heap meanwhile. On a shared machine the CPU time is the steadier
	// figure.
	timed := func(t *tally, call sumFunc, n int) {
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
		t.wall += time.Since(start)
		t.cpu += cpumeter.Process() - cpu0
		t.heap = t.heap.Add(cpumeter.ReadHeap().Sub(h0))
		t.calls += n
	}
	calls := []sumFunc{c.bare, c.stack}
	if c.spread != nil {
		calls = append(calls, c.spread)
	}
	tallies := make([]tally, len(calls))
	// Warm up each (connections, pools).
	for _, call := range calls {
		timed(new(tally), call, block)
	}
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		for i, call := range calls {
			timed(&tallies[i], call, n)
		}
	}
	b.StopTimer()
	perCall := func(t tally, d time.Duration) float64 { return float64(d) / float64(t.calls) }
	bare, stack := tallies[0], tallies[1]
	b.ReportMetric(perCall(bare, bare.wall), "bare-ns/call")
	b.ReportMetric(perCall(stack, stack.wall), "stack-ns/call")
	b.ReportMetric(perCall(bare, bare.wall)/perCall(stack, stack.wall), "stack/bare")
	b.ReportMetric(perCall(bare, bare.cpu)/1000, "bare-cpu-µs/call")
	b.ReportMetric(perCall(stack, stack.cpu)/1000, "stack-cpu-µs/call")
	b.ReportMetric(perCall(bare, bare.cpu)/perCall(stack, stack.cpu), "cpu-stack/bare")
	if c.spread != nil {
		spread := tallies[2]
		b.ReportMetric(perCall(spread, spread.cpu)/1000, "spread-cpu-µs/call")
		b.ReportMetric(perCall(spread, spread.cpu)/perCall(stack, stack.cpu), "cpu-stack/spread")
	}
	b.ReportMetric(float64(bare.heap.Bytes)/float64(bare.calls), "bare-B/call")
	b.ReportMetric(float64(stack.heap.Bytes)/float64(stack.calls), "stack-B/call")
	b.ReportMetric(float64(bare.heap.Objects)/float64(bare.calls), "bare-allocs/call")
	b.ReportMetric(float64(stack.heap.Objects)/float64(stack.calls), "stack-allocs/call")
}
