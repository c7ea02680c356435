package grpc

import (
	"testing"

	"github.com/svckit/svckit/internal/depcheck"
	"github.com/svckit/svckit/observe"
)

// TestDependencies keeps the transport light: besides the standard library it may depend
// only on endpoint, svcerr, transport/meta, internal/ctxprobe, the OpenTelemetry
// propagation and trace API, grpc-go and protobuf, never on observe, the OpenTelemetry
// SDK, exporters or Prometheus.
// It asks "go list -deps" (test imports are not counted), which works offline once the
// module cache holds the dependencies, as it does when the tests compiled.
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
			"github.com/svckit/svckit/internal/ctxprobe", // standard library only
			"github.com/svckit/svckit/svcerr",
			"github.com/svckit/svckit/transport/grpc",
			"github.com/svckit/svckit/transport/meta",
		},
		Modules: []string{
			"github.com/svckit/svckit",
			"go.opentelemetry.io/otel",                  // propagation, baggage, attribute
			"go.opentelemetry.io/otel/trace",            // the span context propagation carries
			"github.com/cespare/xxhash/v2",              // otel/attribute
			"google.golang.org/grpc",                    // the transport itself
			"google.golang.org/protobuf",                // its messages and descriptors
			"google.golang.org/genproto/googleapis/rpc", // status details: ErrorInfo, BadRequest
			"golang.org/x/net",                          // grpc's HTTP/2
			"golang.org/x/text",                         // grpc, through golang.org/x/net
			"golang.org/x/sys",                          // grpc
		},
	})
}

// TestDefaultPropagator checks that the propagator the transport builds for itself writes
// and reads what observe.Propagator does, so that the transport, observe and the other
// packages that use observe.Propagator agree on the wire.
func TestDefaultPropagator(t *testing.T) {
	depcheck.SamePropagation(t, defaultPropagator(), observe.Propagator())
}
