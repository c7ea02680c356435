package grpc_test

import (
	"context"
	"testing"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	svcgrpc "github.com/svckit/svckit/transport/grpc"
	"github.com/svckit/svckit/transport/meta"
)

// TestClientSendsRequestID checks that every call of a svckit client carries a request id:
// its context's, or a new one for each call made outside any request, so that a svckit
// server has one to use and sends none back in the response header.
func TestClientSendsRequestID(t *testing.T) {
	var header metadata.MD
	f := newEchoFixture(t, nil, svcgrpc.WithCallOptions(grpcgo.Header(&header)))
	f.svc.seen = make(chan context.Context, 1)

	tests := []struct {
		name string
		ctx  context.Context
		want string // "" for a new id
	}{
		{"context without an id", context.Background(), ""},
		{"another call without an id", context.Background(), ""},
		{"context with an id", meta.WithRequestID(context.Background(), "req-42"), "req-42"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header = nil
			if _, err := f.echo(tt.ctx, msg{Text: "hi"}); err != nil {
				t.Fatal(err)
			}
			id := meta.RequestID(<-f.svc.seen)
			switch {
			case tt.want != "" && id != tt.want:
				t.Errorf("server saw request id %q, want %q", id, tt.want)
			case tt.want == "" && (!meta.ValidRequestID(id) || seen[id]):
				t.Errorf("server saw request id %q: want a new valid one per call (seen %v)", id, seen)
			}
			seen[id] = true
			if v := header.Get(meta.RequestIDMetadataKey); len(v) != 0 {
				t.Errorf("response header carries x-request-id %v: the server had the client's id", v)
			}
		})
	}
}
