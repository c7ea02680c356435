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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(parent, tt.md)
			got, id := incoming(ctx, defaultPropagator(), tt.info)
			if tt.wantID != "" && id != tt.wantID || tt.wantID == "" && (!meta.ValidRequestID(id) || id == "outer-id") {
				t.Errorf("id %q, want %q", id, tt.wantID)
			}
			if rid := meta.RequestID(got); rid != id {
				t.Errorf("meta.RequestID = %q, want %q", rid, id)
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
// the call's context through the call context acting as the propagator's carrier.
func TestIncomingTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", tp, "baggage", "k=v"))
	got, _ := incoming(ctx, defaultPropagator(), nil)
	c := MetadataCarrier(metadata.MD{})
	defaultPropagator().Inject(got, c)
	if c.Get("traceparent") != tp || c.Get("baggage") != "k=v" {
		t.Errorf("extracted and injected again: %v", metadata.MD(c))
	}
}
