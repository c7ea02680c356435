package natsrpc

import (
	"testing"

	"github.com/svckit/svckit/internal/depcheck"
	"github.com/svckit/svckit/observe"
)

// TestDependencies keeps the transport light: besides the standard library and nats.go
// it may depend only on endpoint, svcerr, transport/meta and the OpenTelemetry
// propagation and trace API, never on observe, the OpenTelemetry SDK, exporters or
// Prometheus.
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
			"github.com/svckit/svckit/transport/meta",
			"github.com/svckit/svckit/transport/natsrpc",
		},
		Modules: []string{
			"github.com/svckit/svckit",
			"github.com/nats-io/nats.go",
			"github.com/nats-io/nkeys",      // nats.go
			"github.com/nats-io/nuid",       // nats.go
			"github.com/klauspost/compress", // nats.go
			"golang.org/x/crypto",           // nkeys
			"go.opentelemetry.io/otel",
			"go.opentelemetry.io/otel/trace",
			"github.com/cespare/xxhash/v2",
			"google.golang.org/grpc",     // svcerr's codes, transport/meta's metadata and peer
			"google.golang.org/protobuf", // grpc/credentials, through transport/meta
			"golang.org/x/sys",
		},
	})
}

// TestDefaultPropagator checks that the transport's propagator writes and reads what
// observe.Propagator does.
func TestDefaultPropagator(t *testing.T) {
	depcheck.SamePropagation(t, defaultPropagator(), observe.Propagator())
}
