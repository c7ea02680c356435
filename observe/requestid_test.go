package observe

import (
	"context"
	"testing"

	"github.com/svckit/svckit/transport/meta"
)

// TestRequestIDForwards checks that the deprecated names share the request id of package
// transport/meta, in both directions.
func TestRequestIDForwards(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"none", context.Background(), ""},
		{"set by meta", meta.WithRequestID(context.Background(), "abc"), "abc"},
		{"set by observe", WithRequestID(context.Background(), "def"), "def"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RequestIDFrom(tt.ctx); got != tt.want {
				t.Errorf("RequestIDFrom = %q, want %q", got, tt.want)
			}
			if got := meta.RequestID(tt.ctx); got != tt.want {
				t.Errorf("meta.RequestID = %q, want %q", got, tt.want)
			}
		})
	}
	if id := NewRequestID(); !ValidRequestID(id) || len(id) != 16 {
		t.Errorf("NewRequestID() = %q, want 16 valid characters", id)
	}
	if ValidRequestID("has space") {
		t.Error(`ValidRequestID("has space") = true`)
	}
	if RequestIDHeader != "X-Request-Id" || RequestIDMetadataKey != "x-request-id" {
		t.Errorf("keys %q, %q", RequestIDHeader, RequestIDMetadataKey)
	}
}
