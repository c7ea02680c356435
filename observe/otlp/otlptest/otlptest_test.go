package otlptest_test

import (
	"context"
	"testing"

	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/observe/otlp/otlptest"
)

// TestDiscard exports a span through the provider a service gets from the environment and
// checks that the lean OTLP provider was chosen and that the collector accepted the export.
func TestDiscard(t *testing.T) {
	url := otlptest.Discard(t)
	if url == "" {
		t.Fatal("Discard returned no URL")
	}
	tp, err := observe.NewTracerProvider(t.Context(), observe.TracingOptions{Service: "otlptest"})
	if err != nil {
		t.Fatal(err)
	}
	if tp.Lean() == nil {
		t.Fatal("the environment Discard set did not select the lean OTLP provider")
	}
	_, span := tp.Tracer("otlptest").Start(t.Context(), "op")
	span.End()
	if err := tp.ForceFlush(t.Context()); err != nil {
		t.Fatalf("export to the collector: %v", err)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
