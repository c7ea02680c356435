package grpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/observe"
)

// TestDependencies keeps the transport light: besides the standard library it may depend
// only on endpoint, svcerr, transport/meta, the OpenTelemetry propagation and trace API,
// grpc-go and protobuf, never on observe, the OpenTelemetry SDK, exporters or Prometheus.
// It asks "go list -deps" (test imports are not counted), which works offline once the
// module cache holds the dependencies, as it does when the tests compiled.
func TestDependencies(t *testing.T) {
	deps := listDeps(t)
	forbidden := []string{
		"github.com/svckit/svckit/observe",
		"go.opentelemetry.io/otel/sdk",
		"go.opentelemetry.io/otel/exporters",
		"go.opentelemetry.io/proto",
		"github.com/prometheus/",
	}
	ownPackages := []string{
		"github.com/svckit/svckit/endpoint",
		"github.com/svckit/svckit/svcerr",
		"github.com/svckit/svckit/transport/grpc",
		"github.com/svckit/svckit/transport/meta",
	}
	modules := []string{
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
	}
	for _, d := range deps {
		switch {
		case slices.ContainsFunc(forbidden, func(f string) bool { return strings.HasPrefix(d.pkg, f) }):
			t.Errorf("depends on %s (module %s), which the transport must not import", d.pkg, d.module)
		case d.module == "github.com/svckit/svckit" && !slices.Contains(ownPackages, d.pkg):
			t.Errorf("depends on svckit package %s; allowed: %v", d.pkg, ownPackages)
		case !slices.Contains(modules, d.module):
			t.Errorf("depends on %s of module %q, not in the allowed list; if it is light and needed, add it", d.pkg, d.module)
		}
	}
}

// dep is a package the package under test depends on, and the module that provides it.
type dep struct{ pkg, module string }

// listDeps returns the packages outside the standard library that the package in the
// current directory depends on, itself included.
func listDeps(t *testing.T) []dep {
	t.Helper()
	gobin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	cmd := exec.Command(gobin, "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}{{end}}", ".")
	cmd.Env = append(os.Environ(), "GOPROXY=off") // never the network
	out, err := cmd.Output()
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("go list -deps: %v", err)
	}
	var deps []dep
	for line := range strings.Lines(string(out)) {
		pkg, module, _ := strings.Cut(strings.TrimSpace(line), " ")
		if pkg != "" {
			deps = append(deps, dep{pkg, module})
		}
	}
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	return deps
}

// TestDefaultPropagator checks that the propagator the transport builds for itself writes
// and reads what observe.Propagator does, so that the transport, observe and the other
// packages that use observe.Propagator agree on the wire.
func TestDefaultPropagator(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"empty", context.Background()},
		{"span context", trace.ContextWithSpanContext(context.Background(), sc)},
		{"baggage", baggage.ContextWithBaggage(context.Background(), bag)},
		{"both", baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), sc), bag)},
	}
	ours, theirs := defaultPropagator(), observe.Propagator()
	if a, b := slices.Sorted(slices.Values(ours.Fields())), slices.Sorted(slices.Values(theirs.Fields())); !slices.Equal(a, b) {
		t.Fatalf("Fields() = %v, observe.Propagator's %v", a, b)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := propagation.MapCarrier{}, propagation.MapCarrier{}
			ours.Inject(tt.ctx, a)
			theirs.Inject(tt.ctx, b)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("injected %v, observe.Propagator %v", a, b)
			}
			got, want := ours.Extract(context.Background(), b), theirs.Extract(context.Background(), b)
			if gsc, wsc := trace.SpanContextFromContext(got), trace.SpanContextFromContext(want); !gsc.Equal(wsc) ||
				gsc.TraceID() != trace.SpanContextFromContext(tt.ctx).TraceID() {
				t.Errorf("extracted span context %v, observe.Propagator %v", gsc, wsc)
			}
			if g, w := baggage.FromContext(got).String(), baggage.FromContext(want).String(); g != w || g != baggage.FromContext(tt.ctx).String() {
				t.Errorf("extracted baggage %q, observe.Propagator %q", g, w)
			}
		})
	}
}
