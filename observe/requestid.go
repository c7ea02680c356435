package observe

import (
	"context"

	"github.com/svckit/svckit/transport/meta"
)

// The request id lives in package transport/meta, with the rest of what travels on the
// wire; the transports set it and the logger and access log read it from there. The names
// below forward to it so that code written against observe keeps working.

// RequestIDHeader is the HTTP header that carries a request id.
//
// Deprecated: use [meta.RequestIDHeader].
const RequestIDHeader = meta.RequestIDHeader

// RequestIDMetadataKey is the gRPC metadata key that carries a request id.
//
// Deprecated: use [meta.RequestIDMetadataKey].
const RequestIDMetadataKey = meta.RequestIDMetadataKey

// NewRequestID returns a new random request id: 16 lowercase hexadecimal digits.
//
// Deprecated: use [meta.NewRequestID].
func NewRequestID() string { return meta.NewRequestID() }

// WithRequestID returns a context that carries the request id id.
//
// Deprecated: use [meta.WithRequestID].
func WithRequestID(ctx context.Context, id string) context.Context {
	return meta.WithRequestID(ctx, id)
}

// RequestIDFrom returns the request id carried by ctx, or "".
//
// Deprecated: use [meta.RequestID].
func RequestIDFrom(ctx context.Context) string { return meta.RequestID(ctx) }

// ValidRequestID reports whether s may be used as a request id received from a caller.
//
// Deprecated: use [meta.ValidRequestID].
func ValidRequestID(s string) bool { return meta.ValidRequestID(s) }
