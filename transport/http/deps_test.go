package http

import (
	"testing"

	"github.com/svckit/svckit/internal/depcheck"
	"github.com/svckit/svckit/observe"
)

// TestDependencies keeps the transport light: besides the standard library it may depend
// only on endpoint, svcerr, transport/meta and the OpenTelemetry propagation and trace
// API, never on observe, the OpenTelemetry SDK, exporters or Prometheus. It asks
// "go list -deps" (test imports are not counted), which works offline once the module
// cache holds the dependencies, as it does when the tests compiled.
func TestDependencies(t *testing.T) {
	depcheck.Dependencies(t, depcheck.Rules{
		Forbidden: []string{
			"github.com/svckit/svckit/observe",
			"go.opentelemetry.io/otel/sdk",
			"go.opentelemetry.io/otel/exporters",
			"go.opentelemetry.io/proto",
			"github.com/prometheus/",
		},
		Own: []string{
			"github.com/svckit/svckit/endpoint",
			"github.com/svckit/svckit/svcerr",
			"github.com/svckit/svckit/transport/http",
			"github.com/svckit/svckit/transport/meta",
		},
		Modules: []string{
			"github.com/svckit/svckit",
			"go.opentelemetry.io/otel",       // propagation, baggage, attribute
			"go.opentelemetry.io/otel/trace", // the span context propagation carries
			"github.com/cespare/xxhash/v2",   // otel/attribute
			"google.golang.org/grpc",         // svcerr's codes, transport/meta's metadata and peer
			"google.golang.org/protobuf",     // grpc/credentials, through transport/meta
			"golang.org/x/sys",               // grpc
		},
	})
}

// TestDefaultPropagator checks that the propagator the transport builds for itself writes
// and reads what observe.Propagator does, so that the transport, observe and the other
// packages that use observe.Propagator agree on the wire.
func TestDefaultPropagator(t *testing.T) {
	depcheck.SamePropagation(t, defaultPropagator(), observe.Propagator())
}
