package grpc

import (
	"context"
	"encoding/hex"
	"strings"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/transport/meta"
)

// outgoingPairs is how many metadata pairs a call's outgoing metadata holds without a heap
// allocation of its own: request id, traceparent, tracestate, baggage and four headers set
// with meta.WithOutgoingHeader.
const outgoingPairs = 8

// kvBuf collects the outgoing metadata of one call as key/value pairs, lowercase keys,
// for a propagator that needs a carrier.
type kvBuf struct {
	arr [2 * outgoingPairs]string
	kv  []string
}

// set replaces the value of key (case-insensitive) or appends the pair, key lowercased.
func (b *kvBuf) set(key, value string) { b.kv = setPair(b.kv, key, value) }

// setPair replaces the value of key (case-insensitive) in the pairs kv, or appends the
// pair with key lowercased.
func setPair(kv []string, key, value string) []string {
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.EqualFold(kv[i], key) {
			kv[i+1] = value
			return kv
		}
	}
	return append(kv, strings.ToLower(key), value)
}

// kvCarrier is a propagation.TextMapCarrier over a kvBuf, for a propagator other than the
// default one.
type kvCarrier struct{ b *kvBuf }

func (c kvCarrier) Get(key string) string {
	kv := c.b.kv
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.EqualFold(kv[i], key) {
			return kv[i+1]
		}
	}
	return ""
}

func (c kvCarrier) Set(key, value string) { c.b.set(key, value) }

func (c kvCarrier) Keys() []string {
	kv := c.b.kv
	keys := make([]string, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		keys = append(keys, kv[i])
	}
	return keys
}

// outgoingMD adds the outgoing metadata of a call to ctx: the request id of ctx, if any
// (outside any request there is none to send: a svckit server makes one up and returns it
// with a failure, as the HTTP and NATS clients leave it), the trace context of ctx written
// by prop — or, when prop is nil, by W3C trace context and W3C baggage directly, as the
// default propagator would, without its interface calls — and the headers set with
// meta.WithOutgoingHeader, which replace the others on a key clash. The pairs are
// collected on the stack and reach grpc-go in one metadata.AppendToOutgoingContext, which
// copies them; with none, ctx is returned as it is.
func outgoingMD(ctx context.Context, prop propagation.TextMapPropagator) context.Context {
	if prop != nil {
		return outgoingWith(ctx, prop)
	}
	var arr [2 * outgoingPairs]string
	kv := appendRequestID(arr[:0], ctx)
	kv = injectW3C(ctx, kv)
	meta.OutgoingHeaders(ctx, func(k, v string) { kv = setPair(kv, k, v) })
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

// outgoingWith is outgoingMD with a propagator of the caller's, which takes its carrier as
// an interface: the pairs go to the heap.
func outgoingWith(ctx context.Context, prop propagation.TextMapPropagator) context.Context {
	b := &kvBuf{}
	b.kv = appendRequestID(b.arr[:0], ctx)
	prop.Inject(ctx, kvCarrier{b})
	meta.OutgoingHeaders(ctx, b.set)
	if len(b.kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, b.kv...)
}

// appendRequestID appends the request id pair of ctx to kv when ctx carries an id.
func appendRequestID(kv []string, ctx context.Context) []string {
	if id := meta.RequestID(ctx); id != "" {
		kv = append(kv, meta.RequestIDMetadataKey, id)
	}
	return kv
}

// injectW3C appends traceparent, tracestate and baggage to kv as
// propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
// would set them (TestOutgoingMDMatchesPropagator compares the two).
func injectW3C(ctx context.Context, kv []string) []string {
	// The keys differ from one another and from the request id's: append, no search.
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		if ts := sc.TraceState().String(); ts != "" {
			kv = append(kv, "tracestate", ts)
		}
		kv = append(kv, "traceparent", traceparent(sc))
	}
	if s := baggage.FromContext(ctx).String(); s != "" {
		kv = append(kv, "baggage", s)
	}
	return kv
}

// traceparent formats the W3C traceparent header of sc: version 00, trace id, span id and
// the sampled and random flags only (the flags the W3C spec defines), in one allocation.
func traceparent(sc trace.SpanContext) string {
	var buf [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	buf[0], buf[1], buf[2] = '0', '0', '-'
	hex.Encode(buf[3:35], tid[:])
	buf[35] = '-'
	hex.Encode(buf[36:52], sid[:])
	buf[52] = '-'
	hex.Encode(buf[53:55], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(buf[:])
}
