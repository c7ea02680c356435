package meta

import (
	"context"
	"math/rand/v2"
)

// RequestIDHeader is the HTTP header that carries a request id, in canonical form. gRPC
// carries it in the metadata key [RequestIDMetadataKey].
const RequestIDHeader = "X-Request-Id"

// RequestIDMetadataKey is the gRPC metadata key that carries a request id.
const RequestIDMetadataKey = "x-request-id"

// maxRequestIDLen is the length of the longest incoming request id that ValidRequestID
// accepts.
const maxRequestIDLen = 128

// RequestIDKey is the context key under which [WithRequestID] stores a request id (a
// string). [RequestID] reads it; a transport that gives a served call's context its own
// type may answer this key in the type's Value method instead of adding a
// context.WithValue per call, with a string or with a *string to a field of that
// context: a pointer goes into the interface without the allocation a string takes
// there, on every lookup. Read the id with RequestID, not with ctx.Value.
type RequestIDKey struct{}

const hexDigits = "0123456789abcdef"

// NewRequestID returns a new random request id: 16 lowercase hexadecimal digits (64 bits).
// It takes no lock: the bits come from the runtime's per-thread ChaCha8 generator, seeded
// from the operating system's random source. It allocates once, for the string.
func NewRequestID() string {
	var b [16]byte
	appendHex64(b[:0], rand.Uint64())
	return string(b[:])
}

// appendHex64 appends v as 16 lowercase hexadecimal digits.
func appendHex64(dst []byte, v uint64) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0xf])
	}
	return dst
}

// WithRequestID returns a context that carries the request id id. The transports call it
// for every served call, with the caller's id when [ValidRequestID] accepts it and a
// [NewRequestID] otherwise; clients forward the id of their context.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, RequestIDKey{}, id)
}

// RequestID returns the request id carried by ctx, or "" when it carries none.
func RequestID(ctx context.Context) string {
	switch id := ctx.Value(RequestIDKey{}).(type) {
	case string:
		return id
	case *string:
		return *id
	}
	return ""
}

// ValidRequestID reports whether s may be used as a request id received from a caller:
// 1 to 128 characters, each a letter, a digit or one of ". _ : -". Transports
// generate a new id with [NewRequestID] for a missing or invalid one, so that a request id
// is always safe to log and to echo in a response header.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// FirstValidRequestID returns the first of ids that [ValidRequestID] accepts, or "" when
// none does. Clients use it to pick the id of a failed request from a reply (its body,
// its header, then the id they sent), keeping only an id that is safe to log.
func FirstValidRequestID(ids ...string) string {
	for _, id := range ids {
		if ValidRequestID(id) {
			return id
		}
	}
	return ""
}
