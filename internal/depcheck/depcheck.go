// Package depcheck holds the tests' checks that keep a package's dependencies and wire
// behaviour within bounds: what a transport may import, and that two propagators agree.
package depcheck

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
)

// Rules bound the dependencies of a package outside the standard library.
type Rules struct {
	// Forbidden are import path prefixes the package must not depend on.
	Forbidden []string
	// Own are the packages of the svckit module it may depend on, itself included.
	Own []string
	// Modules are the modules it may depend on, the svckit module included.
	Modules []string
}

// Dependencies checks the dependencies of the package in the current directory against
// r. It asks "go list -deps" (test imports are not counted) with GOPROXY=off, which works
// once the module cache holds the dependencies, as it does when the tests compiled.
func Dependencies(t *testing.T, r Rules) {
	t.Helper()
	for _, d := range list(t) {
		switch {
		case slices.ContainsFunc(r.Forbidden, func(f string) bool { return strings.HasPrefix(d.pkg, f) }):
			t.Errorf("depends on %s (module %s), which it must not import", d.pkg, d.module)
		case d.module == "github.com/svckit/svckit" && !slices.Contains(r.Own, d.pkg):
			t.Errorf("depends on svckit package %s; allowed: %v", d.pkg, r.Own)
		case !slices.Contains(r.Modules, d.module):
			t.Errorf("depends on %s of module %q, not in the allowed list; if it is light and needed, add it", d.pkg, d.module)
		}
	}
}

// dep is a package depended on, and the module that provides it.
type dep struct{ pkg, module string }

// list returns the packages outside the standard library that the package in the current
// directory depends on, itself included.
func list(t *testing.T) []dep {
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

// SamePropagation checks that ours writes and reads trace context and baggage as theirs
// does, on the wire and back.
func SamePropagation(t *testing.T, ours, theirs propagation.TextMapPropagator) {
	t.Helper()
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
	if a, b := slices.Sorted(slices.Values(ours.Fields())), slices.Sorted(slices.Values(theirs.Fields())); !slices.Equal(a, b) {
		t.Fatalf("Fields() = %v, want %v", a, b)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := propagation.MapCarrier{}, propagation.MapCarrier{}
			ours.Inject(tt.ctx, a)
			theirs.Inject(tt.ctx, b)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("injected %v, want %v", a, b)
			}
			got, want := ours.Extract(context.Background(), b), theirs.Extract(context.Background(), b)
			if gsc, wsc := trace.SpanContextFromContext(got), trace.SpanContextFromContext(want); !gsc.Equal(wsc) ||
				gsc.TraceID() != trace.SpanContextFromContext(tt.ctx).TraceID() {
				t.Errorf("extracted span context %v, want %v", gsc, wsc)
			}
			if g, w := baggage.FromContext(got).String(), baggage.FromContext(want).String(); g != w || g != baggage.FromContext(tt.ctx).String() {
				t.Errorf("extracted baggage %q, want %q", g, w)
			}
		})
	}
}
