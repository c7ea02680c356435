package otlp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/internal/cpumeter"
)

const benchBatch = 512

// benchSpans returns a batch of server spans of one service, with 4 attributes each.
func benchSpans() []sdktrace.ReadOnlySpan {
	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.37.0",
		attribute.String("service.name", "greeter"), attribute.String("service.version", "1.4.2"),
		attribute.String("telemetry.sdk.language", "go"), attribute.String("telemetry.sdk.name", "opentelemetry"),
		attribute.String("telemetry.sdk.version", "1.47.0"))
	scope := instrumentation.Scope{Name: "github.com/svckit/svckit/observe", Version: "v0.1.0"}
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	spans := make([]sdktrace.ReadOnlySpan, benchBatch)
	for i := range spans {
		var tid trace.TraceID
		var sid, psid trace.SpanID
		for j := range tid {
			tid[j] = byte(i*31 + j*7 + 1)
		}
		for j := range sid {
			sid[j] = byte(i*17 + j*3 + 2)
			psid[j] = byte(i*13 + j*5 + 3)
		}
		spans[i] = tracetest.SpanStub{
			Name:        "GET /hello/{name}",
			SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}),
			Parent:      trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: psid, TraceFlags: trace.FlagsSampled, Remote: true}),
			SpanKind:    trace.SpanKindServer,
			StartTime:   start.Add(time.Duration(i) * time.Millisecond),
			EndTime:     start.Add(time.Duration(i)*time.Millisecond + 250*time.Microsecond),
			Attributes: []attribute.KeyValue{
				attribute.String("http.request.method", "GET"),
				attribute.String("http.route", "/hello/{name}"),
				attribute.Int("http.response.status_code", 200),
				attribute.String("url.path", fmt.Sprintf("/hello/user-%d", i)),
			},
			Resource:             res,
			InstrumentationScope: scope,
		}.Snapshot()
	}
	return spans
}

// discardTransport answers every request with 200 after reading its body, without a
// network, to measure the exporters alone.
type discardTransport struct{}

func (discardTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// BenchmarkExport compares otlptracehttp with this package on batches of 512 spans,
// posting to an httptest server over loopback (the server runs in the process, so its
// cost is in the figures, the same for both) and, as "discard", to an in-process
// transport that only reads the body. It reports per span the wall time, the CPU time
// of the whole process (steadier than wall time on a busy machine), and the bytes and
// allocations of the whole process.
func BenchmarkExport(b *testing.B) {
	clearEnv(b)
	spans := benchSpans()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()

	type exporter interface {
		ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error
		Shutdown(context.Context) error
	}
	exporters := map[string]func(client *http.Client) (exporter, error){
		"official": func(client *http.Client) (exporter, error) {
			opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(srv.URL + "/v1/traces")}
			if client != nil {
				opts = append(opts, otlptracehttp.WithHTTPClient(client))
			}
			return otlptracehttp.New(context.Background(), opts...)
		},
		"svckit": func(client *http.Client) (exporter, error) {
			opts := []Option{WithEndpointURL(srv.URL + "/v1/traces")}
			if client != nil {
				opts = append(opts, WithHTTPClient(client))
			}
			return NewHTTPExporter(context.Background(), opts...)
		},
	}
	for _, transport := range []string{"loopback", "discard"} {
		for _, name := range []string{"official", "svckit"} {
			b.Run(fmt.Sprintf("transport=%s/exporter=%s", transport, name), func(b *testing.B) {
				var client *http.Client
				if transport == "discard" {
					client = &http.Client{Transport: discardTransport{}}
				}
				exp, err := exporters[name](client)
				if err != nil {
					b.Fatal(err)
				}
				defer func() { _ = exp.Shutdown(context.Background()) }()
				ctx := context.Background()
				if err := exp.ExportSpans(ctx, spans); err != nil { // warm up connections and buffers
					b.Fatal(err)
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				cpu := cpumeter.Process()
				b.ResetTimer()
				for b.Loop() {
					if err := exp.ExportSpans(ctx, spans); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				cpu = cpumeter.Process() - cpu
				runtime.ReadMemStats(&after)
				n := float64(b.N) * benchBatch
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
				b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/span")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/span")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/span")
			})
		}
	}
}

// BenchmarkEncode measures the encoder alone.
func BenchmarkEncode(b *testing.B) {
	spans := benchSpans()
	var enc encoder
	enc.encode(spans)
	b.SetBytes(int64(len(enc.bytes())))
	b.ReportAllocs()
	cpu := cpumeter.Process()
	for b.Loop() {
		enc.encode(spans)
	}
	cpu = cpumeter.Process() - cpu
	n := float64(b.N * benchBatch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/span")
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/span")
}
