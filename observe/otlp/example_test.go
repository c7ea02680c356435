package otlp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/svckit/svckit/observe/otlp"
)

func ExampleNewHTTPExporter() {
	// A stand-in for an OpenTelemetry Collector, which prints the spans it receives.
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					fmt.Println(r.Method, r.URL.Path, r.Header.Get("Content-Type"), ss.Scope.Name, s.Name)
				}
			}
		}
	}))
	defer collector.Close()

	ctx := context.Background()
	// A service sets OTEL_EXPORTER_OTLP_ENDPOINT (and headers, TLS…) instead of options.
	exp, err := otlp.NewHTTPExporter(ctx, otlp.WithEndpointURL(collector.URL+"/v1/traces"))
	if err != nil {
		fmt.Println(err)
		return
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))

	_, span := tp.Tracer("greeter").Start(ctx, "hello")
	span.End()

	// Shutdown exports the spans still batched, then shuts the exporter down.
	if err := tp.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	// Output: POST /v1/traces application/x-protobuf greeter hello
}
