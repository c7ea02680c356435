package observe

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// TestSemconvMatchesTheSDK keeps the semantic conventions of svckit's spans and resource
// at the version the OpenTelemetry SDK in go.mod uses: when go.opentelemetry.io/otel is
// upgraded and its resource moves to newer conventions, this fails until observe's
// semconv import (tracing.go, provider.go and this file) moves with it. Mixed schema URLs
// would also make resource.Merge fail.
func TestSemconvMatchesTheSDK(t *testing.T) {
	if got := resource.Default().SchemaURL(); got != semconv.SchemaURL {
		t.Errorf("the SDK's resource uses %s, observe uses %s", got, semconv.SchemaURL)
	}
	res, err := newResource(context.Background(), TracingOptions{Service: "svc", Version: "1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if res.SchemaURL() != semconv.SchemaURL {
		t.Errorf("the tracer provider's resource has schema %s, want %s", res.SchemaURL(), semconv.SchemaURL)
	}
}
