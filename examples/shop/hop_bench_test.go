package shop_test

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/catalog/pb"
	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/observe/otlp/otlptest"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/meta"
)

// BenchmarkHop measures what one svckit hop of the shop costs over a direct grpc-go call:
// a caller asks catalog for a product (GetProduct), sequentially, with the same in-memory
// lookup behind both servers, so that only the way there and back differs.
//
//   - svckit: catalog is a svckit.App (its default chain: a span sampled at 100% and
//     exported over OTLP/HTTP to a loopback sink, the JSON access log, RED metrics, the
//     request timeout and panic recovery) serving the generated gRPC transport; the caller is the generated client
//     over App.Dial with App.GRPCClientOptions — the same chain around the call — as
//     the gateway calls catalog under `svckit dev`.
//   - grpc-go: a grpc-go server with a hand-written service descriptor and ClientConn.Invoke,
//     the same protobuf messages, no interceptors.
//
// "plaintext" runs both without TLS; "mtls" runs both over mutual TLS with the
// certificates of a development CA, as `svckit dev` gives them (the shop's setting). The
// two clients run in alternating blocks of calls in one run, so that a noisy machine
// slows both alike; each sub-benchmark reports both times per call, the difference
// (overhead-µs/call) and svckit's throughput as a fraction of grpc-go's (svckit/grpc-go),
// and the same for the process's CPU time per call (both ends of the call, span export and
// GC included): grpc-go-cpu-µs/call, svckit-cpu-µs/call and overhead-cpu-µs/call, the
// steadier figures on a shared machine; and the heap bytes and objects both ends allocate
// per call (grpc-go-B/call, svckit-B/call, grpc-go-allocs/call, svckit-allocs/call), which
// drive the GC's share.
// Spans are exported over OTLP/HTTP to a loopback collector that drops them (its CPU
// counts too) and the access log goes to io.Discard: the hop pays for recording, batching,
// encoding and sending spans and for formatting log lines, not for a pipe.
//
//	go test -run '^$' -bench Hop -benchtime 20000x -count 5 ./examples/shop/
func BenchmarkHop(b *testing.B) {
	for _, withTLS := range []bool{false, true} {
		name := "plaintext"
		if withTLS {
			name = "mtls"
		}
		b.Run(name, func(b *testing.B) {
			b.Setenv("OTEL_TRACES_SAMPLER", "always_on") // as svckit dev sets it
			var pki *hopPKI
			if withTLS {
				pki = newHopPKI(b)
			}
			bare := bareCatalogCall(b, pki)
			hop := svckitCatalogCall(b, pki)
			hopRatio(b, bare, hop, "svckit")
		})
	}
}

// BenchmarkHeadersFloor (named so that -bench Hop leaves it out) measures what grpc-go alone charges for the metadata a svckit hop
// carries: the grpc-go client and server of BenchmarkHop, once bare and once with a new
// x-request-id, a sampled traceparent with a new span id and a 30 s deadline (which grpc-go
// sends as grpc-timeout and turns into a timer on the server) on every call, alternated as
// in BenchmarkHop and reported the same way, the second as "headers". Its
// overhead-cpu-µs/call is the part of BenchmarkHop's that no svckit code spends: HPACK
// encoding and decoding of values new on every call and the server's incoming metadata.
//
//	go test -run '^$' -bench HeadersFloor -benchtime 4000x -count 5 ./examples/shop/
func BenchmarkHeadersFloor(b *testing.B) {
	bare := bareCatalogCall(b, nil)
	with := bareCatalogCall(b, nil)
	headers := func(ctx context.Context) error {
		var tid trace.TraceID
		var sid trace.SpanID
		binary.LittleEndian.PutUint64(tid[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(tid[8:], rand.Uint64())
		binary.LittleEndian.PutUint64(sid[:], rand.Uint64())
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return with(metadata.AppendToOutgoingContext(ctx, meta.RequestIDMetadataKey, meta.NewRequestID(),
			"traceparent", "00-"+tid.String()+"-"+sid.String()+"-01"))
	}
	hopRatio(b, bare, headers, "headers")
}

// BenchmarkCatalogCall runs one side of BenchmarkHop alone (plaintext), so that a CPU
// profile shows where one kind of call spends its time without the other's samples; it
// reports the process's CPU time per call too (cpu-µs/call):
//
//	go test -run '^$' -bench CatalogCall/svckit -benchtime 40000x -cpuprofile cpu.out ./examples/shop/
func BenchmarkCatalogCall(b *testing.B) {
	for name, call := range map[string]func(*testing.B, *hopPKI) getProduct{"grpc-go": bareCatalogCall, "svckit": svckitCatalogCall} {
		b.Run(name, func(b *testing.B) {
			b.Setenv("OTEL_TRACES_SAMPLER", "always_on")
			get := call(b, nil)
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpumeter.Process()
			for b.Loop() {
				if err := get(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpumeter.Process()-cpu0)/float64(b.N)/1000, "cpu-µs/call")
		})
	}
}

type getProduct func(ctx context.Context) error

// hopProduct is what both servers answer.
var hopProduct = catalog.Product{ID: "sku-kettle", Name: "Gooseneck kettle", PriceCents: 5900, Stock: 100000}

// memCatalog answers GetProduct from memory; the benchmark calls nothing else.
type memCatalog struct{ catalog.Catalog }

func (memCatalog) GetProduct(_ context.Context, id string) (catalog.Product, error) {
	p := hopProduct
	p.ID = id
	return p, nil
}

// hopPKI holds a development CA and certificates for catalog and gateway, as svckit dev
// issues them.
type hopPKI struct{ dir string }

func newHopPKI(b *testing.B) *hopPKI {
	dir := b.TempDir()
	ca, _, err := mtls.EnsureCA(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, svc := range []string{"catalog", "gateway"} {
		if _, err := ca.IssueFiles(dir, svc); err != nil {
			b.Fatal(err)
		}
	}
	return &hopPKI{dir: dir}
}

func (p *hopPKI) env(service string) map[string]string {
	return map[string]string{
		"TLS_CERT": filepath.Join(p.dir, mtls.CertFile(service)),
		"TLS_KEY":  filepath.Join(p.dir, mtls.KeyFile(service)),
		"TLS_CA":   filepath.Join(p.dir, mtls.CACertFile),
	}
}

func (p *hopPKI) source(b *testing.B, service string) *mtls.Source {
	e := p.env(service)
	src, err := mtls.NewSource(e["TLS_CERT"], e["TLS_KEY"], e["TLS_CA"])
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// bareCatalog serves catalog.Catalog/GetProduct with grpc-go alone, as protoc-gen-go-grpc
// output would.
var bareCatalog = grpcgo.ServiceDesc{
	ServiceName: catalog.CatalogGRPCService,
	HandlerType: (*any)(nil),
	Methods: []grpcgo.MethodDesc{{
		MethodName: "GetProduct",
		Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpcgo.UnaryServerInterceptor) (any, error) {
			in := new(pb.CatalogGetProductRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			p, err := memCatalog{}.GetProduct(ctx, in.GetId())
			if err != nil {
				return nil, err
			}
			return &pb.Product{Id: p.ID, Name: p.Name, PriceCents: p.PriceCents, Stock: p.Stock}, nil
		},
	}},
}

func bareCatalogCall(b *testing.B, pki *hopPKI) getProduct {
	var sopts []grpcgo.ServerOption
	dial := sgrpc.DialCredentials(nil)
	if pki != nil {
		sopts = append(sopts, sgrpc.ServerCredentials(pki.source(b, "catalog").ServerTLS()))
		dial = sgrpc.DialCredentials(pki.source(b, "gateway").ClientTLS("catalog"))
	}
	g := grpcgo.NewServer(sopts...)
	g.RegisterService(&bareCatalog, struct{}{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	b.Cleanup(g.Stop)
	cc, err := grpcgo.NewClient(ln.Addr().String(), dial)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cc.Close() })
	method := "/" + catalog.CatalogGRPCService + "/GetProduct"
	return func(ctx context.Context) error {
		var out pb.Product
		if err := cc.Invoke(ctx, method, &pb.CatalogGetProductRequest{Id: "sku-kettle"}, &out); err != nil {
			return err
		}
		if out.GetPriceCents() != hopProduct.PriceCents {
			b.Fatalf("grpc-go: got %v", &out)
		}
		return nil
	}
}

// hopApp builds a svckit.App named name with loopback listeners on free ports and, with
// pki, mTLS. Its spans go to the collector otlptest.Discard set up.
func hopApp(b *testing.B, name string, pki *hopPKI) *svckit.App {
	env := map[string]string{"HTTP_ADDR": "127.0.0.1:0", "GRPC_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0"}
	if pki != nil {
		for k, v := range pki.env(name) {
			env[k] = v
		}
	}
	app, err := svckit.New(context.Background(), name, &svckit.Config{}, svckit.Options{
		Stdout: io.Discard, Args: []string{}, Signals: []os.Signal{},
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	if err != nil {
		b.Fatal(err)
	}
	return app
}

func svckitCatalogCall(b *testing.B, pki *hopPKI) getProduct {
	otlptest.Discard(b) // spans exported over OTLP, as a deployed service does
	srv := hopApp(b, "catalog", pki)
	if err := catalog.ServeCatalog(srv, memCatalog{}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Run(ctx); err != nil {
			b.Error(err)
		}
	})
	b.Cleanup(func() { cancel(); wg.Wait() })
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := srv.Addr(actx, "grpc")
	if err != nil {
		b.Fatal(err)
	}

	gw := hopApp(b, "gateway", pki)
	b.Cleanup(func() { _ = gw.TracerProvider().Shutdown(context.Background()) })
	if gw.TracerProvider().Lean() == nil || srv.TracerProvider().Lean() == nil {
		b.Fatal("the apps do not export over the default OTLP path")
	}
	cc, err := gw.Dial(context.Background(), "catalog", addr.String())
	if err != nil {
		b.Fatal(err)
	}
	// gw never runs, so its shutdown would not close the connection.
	b.Cleanup(func() { _ = cc.(io.Closer).Close() })
	cat := catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(cc, gw.GRPCClientOptions()...))
	return func(ctx context.Context) error {
		// A hop is a call made while serving a request: it carries the request's id (a
		// call outside any request sends none).
		p, err := cat.GetProduct(meta.WithRequestID(ctx, meta.NewRequestID()), "sku-kettle")
		if err != nil {
			return err
		}
		if p.PriceCents != hopProduct.PriceCents {
			b.Fatalf("svckit: got %+v", p)
		}
		return nil
	}
}

// hopRatio runs b.N calls of each, one at a time, in alternating blocks, and reports each
// one's time per call, the difference and hop's throughput relative to grpc-go; label names
// hop in the metrics ("svckit").
func hopRatio(b *testing.B, bare, hop getProduct, label string) {
	ctx := context.Background()
	const block = 200
	// timed returns the wall time and the process's CPU time (user + system, both sides of
	// the call and everything in the background: span export, GC) of n calls. On a shared
	// machine the CPU time is the steadier figure: other tenants delay calls, but do not
	// add to what this process spends.
	timed := func(call getProduct, n int) (time.Duration, time.Duration, cpumeter.Heap) {
		h0 := cpumeter.ReadHeap()
		cpu0 := cpumeter.Process()
		start := time.Now()
		for range n {
			if err := call(ctx); err != nil {
				b.Fatal(err)
			}
		}
		t, c := time.Since(start), cpumeter.Process()-cpu0
		return t, c, cpumeter.ReadHeap().Sub(h0)
	}
	timed(bare, block) // connections, pools, first spans
	timed(hop, block)
	var tBare, tHop, cBare, cHop time.Duration
	var hBare, hHop cpumeter.Heap
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		t, c, h := timed(bare, n)
		tBare, cBare, hBare = tBare+t, cBare+c, hBare.Add(h)
		t, c, h = timed(hop, n)
		tHop, cHop, hHop = tHop+t, cHop+c, hHop.Add(h)
	}
	b.StopTimer()
	perBare := float64(tBare) / float64(b.N)
	perHop := float64(tHop) / float64(b.N)
	b.ReportMetric(perBare, "grpc-go-ns/call")
	b.ReportMetric(perHop, label+"-ns/call")
	b.ReportMetric((perHop-perBare)/1000, "overhead-µs/call")
	b.ReportMetric(perBare/perHop, label+"/grpc-go")
	cpuBare := float64(cBare) / float64(b.N) / 1000
	cpuHop := float64(cHop) / float64(b.N) / 1000
	b.ReportMetric(cpuBare, "grpc-go-cpu-µs/call")
	b.ReportMetric(cpuHop, label+"-cpu-µs/call")
	b.ReportMetric(cpuHop-cpuBare, "overhead-cpu-µs/call")
	b.ReportMetric(float64(hBare.Bytes)/float64(b.N), "grpc-go-B/call")
	b.ReportMetric(float64(hHop.Bytes)/float64(b.N), label+"-B/call")
	b.ReportMetric(float64(hBare.Objects)/float64(b.N), "grpc-go-allocs/call")
	b.ReportMetric(float64(hHop.Objects)/float64(b.N), label+"-allocs/call")
}
