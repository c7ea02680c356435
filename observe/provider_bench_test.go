package observe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/observe/otlp"
)

// discardTransport answers every request with 200 after reading its body, without a
// network.
type discardTransport struct{}

func (discardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// benchProvider is a tracer provider under benchmark and how to flush it.
type benchProvider interface {
	trace.TracerProvider
	ForceFlush(context.Context) error
	Shutdown(context.Context) error
}

// newBenchProvider returns the provider of the given path ("sdk": the OpenTelemetry SDK
// with BatchProcessor and otlp.Exporter, as NewTracerProvider builds it with an OTLP
// exporter before the lean provider; "lean": otlp.TracerProvider), exporting through
// client to url.
func newBenchProvider(tb testing.TB, path, url string, client *http.Client) benchProvider {
	tb.Helper()
	opts := []otlp.Option{otlp.WithEndpointURL(url)}
	if client != nil {
		opts = append(opts, otlp.WithHTTPClient(client))
	}
	exp, err := otlp.NewHTTPExporter(context.Background(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := newResource(context.Background(), TracingOptions{Service: "greeter", Version: "1.0.0"})
	if err != nil {
		tb.Fatal(err)
	}
	sampler := sdktrace.ParentBased(sdktrace.AlwaysSample())
	var tp benchProvider
	switch path {
	case "sdk":
		tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sampler),
			sdktrace.WithSpanProcessor(NewBatchProcessor(exp, BatchOptions{})))
	case "lean":
		tp = otlp.NewTracerProvider(exp, otlp.ProviderOptions{Resource: res, Sampler: sampler})
	default:
		tb.Fatalf("unknown path %q", path)
	}
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// BenchmarkSpan measures what one recorded, exported server span costs, as Tracing
// records it for a gRPC call: start (child of a remote parent, as a transport extracts
// it), the two RPC attributes, end, and its share of the batch export (the queue, the
// OTLP encoding and the HTTP post, to a loopback server in the process or to a transport
// that discards the request). "error" adds what a failed call adds: the error kind, an
// exception event and the Error status. It reports the process's CPU time per span
// (the export goroutine and, over loopback, the receiving server included) and the
// allocations of the whole process per span.
func BenchmarkSpan(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	parent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	attrs := []attribute.KeyValue{semconv.RPCSystemNameKey.String("grpc"), semconv.RPCMethod("greeter.Greeter/Hello")}
	failure := errors.New("boom")
	for _, call := range []string{"ok", "error"} {
		for _, transport := range []string{"discard", "loopback"} {
			for _, path := range []string{"sdk", "lean"} {
				b.Run("call="+call+"/transport="+transport+"/path="+path, func(b *testing.B) {
					var client *http.Client
					if transport == "discard" {
						client = &http.Client{Transport: discardTransport{}}
					}
					tp := newBenchProvider(b, path, srv.URL+"/v1/traces", client)
					tracer := tp.Tracer(ScopeName)
					opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
					one := func() {
						_, span := tracer.Start(ctx, "greeter.Greeter/Hello", opts...)
						if span.IsRecording() {
							span.SetAttributes(attrs...)
						}
						if call == "error" {
							span.SetAttributes(kindAttrs[3])
							span.RecordError(failure)
							span.SetStatus(codes.Error, failure.Error())
						}
						span.End()
					}
					for range 1000 { // warm up buffers and connections
						one()
					}
					if err := tp.ForceFlush(context.Background()); err != nil {
						b.Fatal(err)
					}
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					cpu := cpumeter.Process()
					b.ResetTimer()
					for b.Loop() {
						one()
					}
					if err := tp.ForceFlush(context.Background()); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					cpu = cpumeter.Process() - cpu
					runtime.ReadMemStats(&after)
					n := float64(b.N)
					b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/span")
					b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/span")
					b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/span")
				})
			}
		}
	}
}
