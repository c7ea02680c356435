package otlp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/svckit/svckit/observe/otlp"
)

func ExampleNewTracerProvider() {
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
					fmt.Println(ss.Scope.Name, s.Name, s.Kind, len(s.Attributes), "attributes, parent", len(s.ParentSpanId) > 0)
				}
			}
		}
	}))
	defer collector.Close()

	ctx := context.Background()
	exp, err := otlp.NewHTTPExporter(ctx, otlp.WithEndpointURL(collector.URL+"/v1/traces"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// observe.NewTracerProvider builds one from the OTEL_* variables; the zero options
	// are the SDK's defaults (ParentBased(AlwaysSample), 128 attributes, batches of 512).
	tp := otlp.NewTracerProvider(exp, otlp.ProviderOptions{})

	tracer := tp.Tracer("greeter")
	ctx, parent := tracer.Start(ctx, "hello", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tracer.Start(ctx, "lookup")
	child.SetAttributes(attribute.String("user", "bob"))
	child.End()
	parent.End()

	// Shutdown exports the spans still queued, then shuts the exporter down.
	if err := tp.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// greeter lookup SPAN_KIND_INTERNAL 1 attributes, parent true
	// greeter hello SPAN_KIND_SERVER 0 attributes, parent false
}
