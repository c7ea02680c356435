package grpc

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/internal/ctxprobe"
	"github.com/svckit/svckit/transport/meta"
)

// MetadataCarrier adapts gRPC metadata to an OpenTelemetry propagation.TextMapCarrier, so
// that a propagator can read trace context from incoming metadata and write it to outgoing
// metadata. Keys are lowercased, as gRPC requires.
type MetadataCarrier metadata.MD

var _ propagation.TextMapCarrier = MetadataCarrier(nil)

// Get returns the first value of key, or "".
func (c MetadataCarrier) Get(key string) string {
	v := metadata.MD(c).Get(key)
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Set replaces the values of key with value.
func (c MetadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

// Keys returns the keys of the metadata.
func (c MetadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// callContext is the context of a served call as incoming prepares it: the request id
// and the endpoint's Info in one allocation, where meta.WithRequestID and
// endpoint.WithInfo would make two (it answers their keys). It is also the carrier the
// propagator reads trace context from: the incoming metadata of the server context,
// without copying all of it as metadata.FromIncomingContext would.
type callContext struct {
	context.Context
	id   string
	info *endpoint.Info
	// md is the incoming metadata itself, not a copy, when every key in it is lowercase
	// (always so for metadata grpc-go decoded from the wire: HTTP/2 forbids uppercase
	// header names); nil otherwise, and Get then asks grpc-go as before.
	md metadata.MD
}

// Value answers meta.RequestIDKey and, when the call has one, endpoint.InfoKey; other
// keys are the parent's.
func (c *callContext) Value(key any) any {
	switch key.(type) {
	case meta.RequestIDKey:
		return &c.id // pointer-shaped: no allocation per lookup
	case endpoint.InfoKey:
		if c.info != nil {
			return c.info
		}
	}
	return c.Context.Value(key)
}

// Get returns the first value of the incoming metadata key, or "".
func (c *callContext) Get(key string) string {
	return incomingValue(c.Context, c.md, key)
}

// incomingValue returns the first value of key in the incoming metadata of ctx, or "".
// md is that metadata when it is known to hold lowercase keys only (see incomingMD):
// a lowercase key is then looked up directly, without the walk up the context chain,
// the case-insensitive scan of every key on a miss and the copy of the values on a hit
// that metadata.ValueFromIncomingContext makes.
func incomingValue(ctx context.Context, md metadata.MD, key string) string {
	if md != nil && isLower(key) {
		if v := md[key]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	v := metadata.ValueFromIncomingContext(ctx, key)
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// incomingMDKey is the context key under which grpc-go keeps the incoming metadata of a
// served call, or nil if it could not be learned. metadata.ValueFromIncomingContext
// asks the context for it; a ctxprobe.FirstKey probe records what it asks, and the key is checked
// to retrieve metadata set with metadata.NewIncomingContext, so that a grpc-go that
// stores it otherwise only turns the fast path of incomingMD off.
var incomingMDKey = func() any {
	key := ctxprobe.FirstKey(func(ctx context.Context) { metadata.ValueFromIncomingContext(ctx, "k") })
	if key == nil {
		return nil
	}
	want := metadata.Pairs("k", "v")
	md, _ := metadata.NewIncomingContext(context.Background(), want).Value(key).(metadata.MD)
	if len(md["k"]) != 1 || md["k"][0] != "v" {
		return nil
	}
	return key
}()

// incomingMD returns the incoming metadata of ctx, not a copy, if every key in it is
// lowercase, as in metadata grpc-go decoded from the wire; nil otherwise (none, or keys
// that metadata replaced by an interceptor holds in another case, which only
// metadata.ValueFromIncomingContext finds). The caller must not modify it.
func incomingMD(ctx context.Context) metadata.MD {
	if incomingMDKey == nil {
		return nil
	}
	md, _ := ctx.Value(incomingMDKey).(metadata.MD)
	for k := range md {
		if !isLower(k) {
			return nil
		}
	}
	return md
}

// isLower reports whether s has no ASCII uppercase letter.
func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

// Set does nothing: incoming metadata is read-only.
func (*callContext) Set(string, string) {}

// Keys returns the keys of the incoming metadata.
func (c *callContext) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.Context)
	return MetadataCarrier(md).Keys()
}

// defaultPropagator returns the propagator servers and clients use unless told otherwise:
// W3C trace context (traceparent, tracestate) and W3C baggage, the same as
// observe.Propagator, built here so that this package does not depend on observe.
func defaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// incoming prepares the context of a served call: the caller's request id (or a new one),
// the remote trace context and the endpoint's Info. It returns the request id when the
// server generated it (the caller sent none, or an invalid one), else "": a failed call
// then carries it in its status (see statusError), as a caller that sent a valid id has
// it already.
func incoming(ctx context.Context, prop propagation.TextMapPropagator, info *endpoint.Info) (_ context.Context, generatedID string) {
	c := &callContext{Context: ctx, info: info, md: incomingMD(ctx)}
	if id := incomingValue(ctx, c.md, meta.RequestIDMetadataKey); meta.ValidRequestID(id) {
		c.id = id
	} else {
		c.id = meta.NewRequestID()
		generatedID = c.id
	}
	return prop.Extract(c, c), generatedID
}
