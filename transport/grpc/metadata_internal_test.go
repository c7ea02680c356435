package grpc

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/transport/meta"
)

type otherKey struct{}

// TestIncomingContext checks that the one context value incoming adds answers what
// meta.WithRequestID, endpoint.WithInfo and the parent context would.
func TestIncomingContext(t *testing.T) {
	outer := &endpoint.Info{Service: "outer", Method: "M"}
	info := &endpoint.Info{Service: "svc", Method: "M"}
	parent := context.WithValue(endpoint.WithInfo(meta.WithRequestID(context.Background(), "outer-id"), outer), otherKey{}, "v")
	tests := []struct {
		name     string
		md       metadata.MD
		info     *endpoint.Info
		wantID   string // "" means a new, valid id
		wantInfo *endpoint.Info
	}{
		{"caller's id and the method's info", metadata.Pairs("x-request-id", "abc-1"), info, "abc-1", info},
		{"invalid id replaced", metadata.Pairs("x-request-id", "not valid"), info, "", info},
		{"no id, no info: the parent's info", nil, nil, "", outer},
		// Metadata an interceptor replaced with keys in another case: found as
		// metadata.ValueFromIncomingContext finds them.
		{"mixed-case keys", metadata.MD{"X-Request-Id": {"abc-2"}, "Other": {"x"}}, info, "abc-2", info},
		{"mixed-case other key, lowercase id", metadata.MD{"x-request-id": {"abc-3"}, "Other": {"x"}}, info, "abc-3", info},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(parent, tt.md)
			got, generatedID := incoming(ctx, defaultPropagator(), tt.info)
			id := meta.RequestID(got)
			if tt.wantID != "" && id != tt.wantID || tt.wantID == "" && (!meta.ValidRequestID(id) || id == "outer-id") {
				t.Errorf("id %q, want %q", id, tt.wantID)
			}
			wantGenerated := ""
			if tt.wantID == "" {
				wantGenerated = id
			}
			if generatedID != wantGenerated {
				t.Errorf("generated id %q for id %q, want %q", generatedID, id, wantGenerated)
			}
			if i := endpoint.InfoFrom(got); i != tt.wantInfo {
				t.Errorf("endpoint.InfoFrom = %+v, want %+v", i, tt.wantInfo)
			}
			if v := got.Value(otherKey{}); v != "v" {
				t.Errorf("parent's value %v", v)
			}
			// A context derived from it sees the same, and cancellation still propagates.
			cctx, cancel := context.WithCancel(got)
			if meta.RequestID(cctx) != id {
				t.Errorf("derived context lost the request id")
			}
			cancel()
			<-cctx.Done()
		})
	}
}

// TestIncomingTraceContext checks that the trace context of the incoming metadata reaches
// the call's context through the call context acting as the propagator's carrier, with
// lowercase keys (read from the metadata directly) and keys in another case (read through
// grpc-go).
func TestIncomingTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, md := range []metadata.MD{
		metadata.Pairs("traceparent", tp, "baggage", "k=v"),
		{"Traceparent": {tp}, "BAGGAGE": {"k=v"}},
	} {
		ctx := metadata.NewIncomingContext(context.Background(), md)
		got, _ := incoming(ctx, defaultPropagator(), nil)
		c := MetadataCarrier(metadata.MD{})
		defaultPropagator().Inject(got, c)
		if c.Get("traceparent") != tp || c.Get("baggage") != "k=v" {
			t.Errorf("from %v, extracted and injected again: %v", md, metadata.MD(c))
		}
	}
}

// TestIncomingMD checks that the incoming metadata is read without a copy with the
// grpc-go of go.mod, and only when all its keys are lowercase, and that the carrier
// answers as metadata.ValueFromIncomingContext does, whatever the case of the key asked.
func TestIncomingMD(t *testing.T) {
	if incomingMDKey == nil {
		t.Fatal("the context key of grpc-go's incoming metadata was not learned: every call takes the slow path")
	}
	lower := metadata.Pairs("a", "1", "b", "2", "b", "3")
	tests := []struct {
		name   string
		ctx    context.Context
		direct bool
	}{
		{"lowercase", metadata.NewIncomingContext(context.Background(), lower), true},
		{"mixed case", metadata.NewIncomingContext(context.Background(), metadata.MD{"A": {"1"}, "b": {"2", "3"}}), false},
		{"none", context.Background(), false},
		{"replaced by a later NewIncomingContext", metadata.NewIncomingContext(
			metadata.NewIncomingContext(context.Background(), metadata.Pairs("a", "0")), lower), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := incomingMD(tt.ctx)
			if (md != nil) != tt.direct {
				t.Fatalf("direct = %v, want %v", md != nil, tt.direct)
			}
			c := &callContext{Context: tt.ctx, md: md}
			for _, key := range []string{"a", "A", "b", "B", "c", ""} {
				want := ""
				if v := metadata.ValueFromIncomingContext(tt.ctx, key); len(v) > 0 {
					want = v[0]
				}
				if got := c.Get(key); got != want {
					t.Errorf("Get(%q) = %q, want %q", key, got, want)
				}
			}
		})
	}
}
