package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// countingExporter drops spans and counts them.
type countingExporter struct{ n atomic.Int64 }

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.n.Add(int64(len(spans)))
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error { return nil }

type helloReq struct {
	Name string `json:"name"`
}

type helloResp struct {
	Greeting string `json:"greeting"`
}

func hello(_ context.Context, req helloReq) (helloResp, error) {
	return helloResp{Greeting: "hello " + req.Name}, nil
}

// stack is the production observability stack over a batching, discarding exporter.
type stack struct {
	tp  *sdktrace.TracerProvider
	exp *countingExporter
	mws []endpoint.Middleware
}

func newStack(b *testing.B, sampler sdktrace.Sampler) *stack {
	b.Helper()
	exp := &countingExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sampler))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	logger := NewLogger(io.Discard, LogOptions{Service: "greeter"})
	return &stack{tp: tp, exp: exp, mws: []endpoint.Middleware{Tracing(tp), AccessLog(logger), m.Middleware()}}
}

// reportExported reports the share of calls whose span reached the exporter; below 1 the
// batch processor's queue was full and dropped spans.
func (s *stack) reportExported(b *testing.B, calls int) {
	if err := s.tp.ForceFlush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.exp.n.Load())/float64(calls), "exported/op")
}

var info = endpoint.Info{Service: "greeter", Method: "Hello", Transport: "http"}

func benchEndpoint(b *testing.B, e endpoint.Endpoint[helloReq, helloResp]) int {
	b.ReportAllocs()
	ctx := meta.WithRequestID(context.Background(), "0123456789abcdef")
	req := helloReq{Name: "bob"}
	n := 0
	for b.Loop() {
		if _, err := e(ctx, req); err != nil {
			b.Fatal(err)
		}
		n++
	}
	return n
}

func BenchmarkBare(b *testing.B) {
	benchEndpoint(b, hello)
}

// BenchmarkWrapped is the baseline for the middleware: the endpoint behind endpoint.Wrap
// with a no-op middleware, which boxes the request and the response.
func BenchmarkWrapped(b *testing.B) {
	benchEndpoint(b, endpoint.Wrap(info, hello, endpoint.Nop))
}

func BenchmarkStack(b *testing.B) {
	s := newStack(b, sdktrace.AlwaysSample())
	n := benchEndpoint(b, endpoint.Wrap(info, hello, s.mws...))
	s.reportExported(b, n)
}

func BenchmarkStackWithoutRPCAttributes(b *testing.B) {
	s := newStack(b, sdktrace.AlwaysSample())
	s.mws[0] = Tracing(s.tp, WithoutRPCAttributes())
	n := benchEndpoint(b, endpoint.Wrap(info, hello, s.mws...))
	s.reportExported(b, n)
}

func BenchmarkStackUnsampled(b *testing.B) {
	s := newStack(b, sdktrace.ParentBased(sdktrace.NeverSample()))
	benchEndpoint(b, endpoint.Wrap(info, hello, s.mws...))
}

func BenchmarkStackError(b *testing.B) {
	s := newStack(b, sdktrace.AlwaysSample())
	errNotFound := svcerr.New(svcerr.NotFound, "no such user")
	fail := func(context.Context, helloReq) (helloResp, error) { return helloResp{}, errNotFound }
	b.ReportAllocs()
	e := endpoint.Wrap(info, fail, s.mws...)
	ctx := context.Background()
	for b.Loop() {
		_, _ = e(ctx, helloReq{})
	}
}

func BenchmarkMiddleware(b *testing.B) {
	exp := &countingExporter{}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		mw   endpoint.Middleware
	}{
		{"AccessLog", AccessLog(NewLogger(io.Discard, LogOptions{}))},
		{"AccessLogDisabled", AccessLog(NewLogger(io.Discard, LogOptions{Level: slog.LevelError + 1}))},
		{"Metrics", m.Middleware()},
		{"Tracing", Tracing(tp)},
		{"TracingWithoutRPCAttributes", Tracing(tp, WithoutRPCAttributes())},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchEndpoint(b, endpoint.Wrap(info, hello, bc.mw))
		})
	}
}

// BenchmarkNewRequestID measures the forwarding NewRequestID, which should cost what
// meta.NewRequestID costs (see BenchmarkNewRequestID in transport/meta).
func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewRequestID()
	}
}

// BenchmarkHTTP compares a bare net/http JSON handler with the same handler doing what a
// svckit HTTP transport adds around the endpoint (request id, trace context extraction, the
// observability stack with tracing at 100% through a batch span processor), over real
// loopback connections from parallel clients. Each iteration sends one request to each
// server, so both see the same machine load; it reports the mean latency of each and the
// stack's overhead in percent.
func BenchmarkHTTP(b *testing.B) {
	s := newStack(b, sdktrace.AlwaysSample())
	b.Run("Stack", func(b *testing.B) { benchHTTP(b, s.mws) })
	lean := append([]endpoint.Middleware{Tracing(s.tp, WithoutRPCAttributes())}, s.mws[1:]...)
	b.Run("StackWithoutRPCAttributes", func(b *testing.B) { benchHTTP(b, lean) })
}

// benchHTTP runs BenchmarkHTTP with the middleware mws.
func benchHTTP(b *testing.B, mws []endpoint.Middleware) {
	bare := func(w http.ResponseWriter, r *http.Request) {
		var req helloReq
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, _ := hello(r.Context(), req)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}
	e := endpoint.Wrap(info, hello, mws...)
	prop := Propagator()
	observed := func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(meta.RequestIDHeader)
		if !meta.ValidRequestID(id) {
			id = meta.NewRequestID()
		}
		ctx := meta.WithRequestID(r.Context(), id)
		ctx = prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		var req helloReq
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp, err := e(ctx, req)
		if err != nil {
			http.Error(w, err.Error(), svcerr.KindOf(err).HTTPStatus())
			return
		}
		w.Header().Set(meta.RequestIDHeader, id)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}
	bareSrv := httptest.NewServer(http.HandlerFunc(bare))
	defer bareSrv.Close()
	stackSrv := httptest.NewServer(http.HandlerFunc(observed))
	defer stackSrv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	var bareNS, stackNS atomic.Int64
	post := func(url string, buf *bytes.Buffer) (time.Duration, bool) {
		start := time.Now()
		resp, err := client.Post(url, "application/json", strings.NewReader(`{"name":"bob"}`))
		if err != nil {
			b.Error(err)
			return 0, false
		}
		buf.Reset()
		_, _ = buf.ReadFrom(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("status %d", resp.StatusCode)
			return 0, false
		}
		return time.Since(start), true
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf bytes.Buffer
		for pb.Next() {
			d, ok := post(bareSrv.URL, &buf)
			if !ok {
				return
			}
			bareNS.Add(int64(d))
			if d, ok = post(stackSrv.URL, &buf); !ok {
				return
			}
			stackNS.Add(int64(d))
		}
	})
	b.StopTimer()
	bn, sn := float64(bareNS.Load()), float64(stackNS.Load())
	b.ReportMetric(bn/float64(b.N)/1e3, "bare-µs/req")
	b.ReportMetric(sn/float64(b.N)/1e3, "stack-µs/req")
	b.ReportMetric(100*(sn-bn)/bn, "overhead-%")
}
