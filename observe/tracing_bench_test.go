package observe

import (
	"context"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/observe/otlp/otlptest"
)

// BenchmarkLeanStack measures the server middleware of svckit.App's default chain on the
// production tracing path: the lean OTLP provider sampling every span and exporting to a
// loopback collector that discards, the JSON access log to io.Discard, RED metrics. Each
// middleware alone, then the three together, over endpoint.Wrap with a no-op middleware.
func BenchmarkLeanStack(b *testing.B) {
	otlptest.Discard(b)
	tp, err := NewTracerProvider(context.Background(), TracingOptions{Service: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	if tp.Lean() == nil {
		b.Fatal("not the lean provider")
	}
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	logger := NewLogger(io.Discard, LogOptions{Service: "bench"})
	grpcInfo := endpoint.Info{Service: "greeter", Method: "Hello", Transport: "grpc"}
	for _, bc := range []struct {
		name string
		mws  []endpoint.Middleware
	}{
		{"Nop", []endpoint.Middleware{endpoint.Nop}},
		{"Tracing", []endpoint.Middleware{Tracing(tp)}},
		{"AccessLog", []endpoint.Middleware{AccessLog(logger)}},
		{"Metrics", []endpoint.Middleware{m.Middleware()}},
		{"All", []endpoint.Middleware{Tracing(tp), AccessLog(logger), m.Middleware()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchEndpoint(b, endpoint.Wrap(grpcInfo, hello, bc.mws...))
		})
	}
}
