package http

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestHeaderCarrier checks that headerCarrier answers, sets and lists exactly what
// propagation.HeaderCarrier does, for the W3C names in any case and for other keys.
func TestHeaderCarrier(t *testing.T) {
	header := func() http.Header {
		return http.Header{
			"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
			"Tracestate":  {"a=1", "b=2"},
			"Baggage":     {"k=v", "k2=v2"},
			"X-Other":     {"x"},
		}
	}
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT", "tracestate", "baggage",
		"BAGGAGE", "x-other", "X-Other", "missing", "", "bad key"} {
		h1, h2 := header(), header()
		ours, theirs := headerCarrier(h1), propagation.HeaderCarrier(h2)
		if g, w := ours.Get(key), theirs.Get(key); g != w {
			t.Errorf("Get(%q) = %q, want %q", key, g, w)
		}
		if g, w := ours.Values(key), theirs.Values(key); !slices.Equal(g, w) {
			t.Errorf("Values(%q) = %q, want %q", key, g, w)
		}
		ours.Set(key, "new")
		theirs.Set(key, "new")
		if g, w := ours.Keys(), theirs.Keys(); !sameSet(g, w) {
			t.Errorf("after Set(%q): Keys() = %q, want %q", key, g, w)
		}
		for k := range h2 {
			if !slices.Equal(h1[k], h2[k]) {
				t.Errorf("after Set(%q): %s = %q, want %q", key, k, h1[k], h2[k])
			}
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestHeaderCarrierAllocations checks that extracting W3C trace context and baggage with
// the default propagator allocates less through headerCarrier than through
// propagation.HeaderCarrier (which canonicalises each lower-case name into a new string),
// and that both extract the same span context.
func TestHeaderCarrierAllocations(t *testing.T) {
	h := http.Header{
		"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Tracestate":  {"a=1"},
	}
	prop := defaultPropagator()
	ctx := context.Background()
	got := trace.SpanContextFromContext(prop.Extract(ctx, headerCarrier(h)))
	want := trace.SpanContextFromContext(prop.Extract(ctx, propagation.HeaderCarrier(h)))
	if !got.IsValid() || !got.Equal(want) {
		t.Fatalf("extracted %v, want %v", got, want)
	}
	ours := testing.AllocsPerRun(200, func() { _ = prop.Extract(ctx, headerCarrier(h)) })
	theirs := testing.AllocsPerRun(200, func() { _ = prop.Extract(ctx, propagation.HeaderCarrier(h)) })
	if ours >= theirs {
		t.Fatalf("extraction allocates %.0f times through headerCarrier, %.0f through propagation.HeaderCarrier", ours, theirs)
	}
	t.Logf("allocations per extraction: %.0f (propagation.HeaderCarrier: %.0f)", ours, theirs)
}
