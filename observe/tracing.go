package observe

import (
	"context"
	"encoding/json"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// ScopeName is the instrumentation scope name of the spans that Tracing starts.
const ScopeName = "github.com/svckit/svckit/observe"

// ErrorKindKey is the span attribute that holds the svcerr kind of a failed call.
const ErrorKindKey = attribute.Key("svckit.error.kind")

// kindAttrs holds the ErrorKindKey attribute of each kind, built once.
var kindAttrs = func() (a [numKinds]attribute.KeyValue) {
	for k := range a {
		a[k] = ErrorKindKey.String(svcerr.Kind(k).String())
	}
	return a
}()

// Propagator returns a new propagator for the W3C trace context (traceparent, tracestate)
// and W3C baggage headers. The HTTP and gRPC transports build the same one by default
// (without importing this package; their tests compare the two): servers extract with it
// before the middleware chain runs and clients inject with it after theirs. Packages that
// carry trace context in messages use this one.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Tracing returns middleware that starts a span for each call, named "Service/Method", of
// kind server, or client for client endpoints. Its parent is the span in the call's
// context: the remote span context a transport extracted, or the caller's span. Unless
// WithoutRPCAttributes is given, the span of an RPC transport (grpc, nats, inproc) has the
// attributes of the OpenTelemetry semantic conventions for RPC of the version that matches
// the OpenTelemetry API in svckit's go.mod (semconv v1.43.0): rpc.system.name (the
// transport) and rpc.method ("Service/Method"). An HTTP endpoint's span has neither: HTTP
// is not an RPC system in the conventions, and its HTTP attributes (route, status code)
// are the transport's to set.
//
// A failed call's span gets the svckit.error.kind attribute. Following the OpenTelemetry
// semantic conventions for RPC, a client span is marked failed, with status Error and an
// exception event, for every error, a server span only for a ServerFault. A call whose
// own caller canceled it (its context was canceled: the client went away, HTTP's 499) is
// not marked failed on either side: the caller chose its outcome.
//
// A nil tp disables tracing.
func Tracing(tp trace.TracerProvider, opts ...TracingOption) endpoint.Middleware {
	if tp == nil {
		return endpoint.Nop
	}
	var cfg tracingConfig
	for _, o := range opts {
		o(&cfg)
	}
	tracer := tp.Tracer(ScopeName)
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		name := info.Service + "/" + info.Method
		kind := trace.SpanKindServer
		if info.Client {
			kind = trace.SpanKindClient
		}
		opts := []trace.SpanStartOption{trace.WithSpanKind(kind)}
		var attrs []attribute.KeyValue
		if !cfg.noAttrs && info.Transport != "http" {
			attrs = []attribute.KeyValue{
				semconv.RPCSystemNameKey.String(info.Transport),
				semconv.RPCMethod(name),
			}
		}
		client := info.Client
		fast, _ := tracer.(spanStarter)
		shared, _ := tracer.(sharedSpanStarter)
		return func(ctx context.Context, req any) (any, error) {
			var span trace.Span
			if shared != nil {
				// attrs is this endpoint's and never changes: the span refers to it.
				ctx, span = shared.StartSpanShared(ctx, name, kind, attrs)
				ctx = withCallStart(ctx, span)
			} else if fast != nil {
				ctx, span = fast.StartSpan(ctx, name, kind, attrs)
				ctx = withCallStart(ctx, span)
			} else {
				ctx, span = tracer.Start(ctx, name, opts...)
				if len(attrs) > 0 && span.IsRecording() {
					// Set after the start rather than with trace.WithAttributes, which
					// copies them once more per call; samplers therefore do not see them.
					span.SetAttributes(attrs...)
				}
			}
			recording := span.IsRecording()
			if recording && cfg.bodyLimit > 0 {
				if a, ok := bodyAttr(RequestBodyKey, req, cfg.bodyLimit); ok {
					span.SetAttributes(a)
				}
			}
			resp, err := next(ctx, req)
			if recording && cfg.bodyLimit > 0 && err == nil && !info.Streaming {
				if a, ok := bodyAttr(ResponseBodyKey, resp, cfg.bodyLimit); ok {
					span.SetAttributes(a)
				}
			}
			if err != nil && recording {
				k := svcerr.KindOf(err)
				if int(k) < numKinds {
					span.SetAttributes(kindAttrs[k])
				} else {
					span.SetAttributes(ErrorKindKey.String(k.String()))
				}
				if (client || ServerFault(k)) && !callerCanceled(ctx) {
					span.RecordError(err)
					span.SetStatus(codes.Error, err.Error())
				}
			}
			span.End()
			return resp, err
		}
	}
}

// spanStarter is implemented by the tracers of svckit's lean OTLP provider
// (observe/otlp): StartSpan starts a span of a kind and sets attributes on it after
// sampling, as Start with trace.WithSpanKind followed by SetAttributes does, without
// building a trace.SpanConfig on every call.
type spanStarter interface {
	StartSpan(ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue) (context.Context, trace.Span)
}

// sharedSpanStarter is StartSpan for attributes no one changes while the span may read
// them (observe/otlp's tracers have it): the span refers to attrs instead of copying them.
type sharedSpanStarter interface {
	StartSpanShared(ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue) (context.Context, trace.Span)
}

// callerCanceled reports whether ctx, the context a call was made with, was canceled (not
// timed out): the caller gave up on the call.
func callerCanceled(ctx context.Context) bool {
	return ctx.Err() == context.Canceled
}

// TracingOption configures Tracing.
type TracingOption func(*tracingConfig)

type tracingConfig struct {
	noAttrs   bool
	bodyLimit int // > 0: request and response bodies on recording spans, cut at this many bytes
}

// Span attributes of WithBodies.
const (
	RequestBodyKey  = attribute.Key("rpc.request.body")
	ResponseBodyKey = attribute.Key("rpc.response.body")
)

// WithBodies records each call's request and response, as JSON cut at limit bytes, on
// recording spans (attributes rpc.request.body and rpc.response.body; a streamed response
// is not recorded). For development only: bodies hold what callers send — personal data,
// secrets — and cost a JSON encoding each. svckit turns it on with TRACE_BODIES, and
// svckit dev with -trace-bodies.
func WithBodies(limit int) TracingOption {
	return func(c *tracingConfig) { c.bodyLimit = limit }
}

// bodyAttr encodes v as JSON cut at limit bytes; ok is false for what JSON cannot encode.
func bodyAttr(key attribute.Key, v any, limit int) (attribute.KeyValue, bool) {
	b, err := json.Marshal(v)
	if err != nil {
		return attribute.KeyValue{}, false
	}
	if len(b) > limit {
		b = append(b[:limit:limit], "…(cut)"...)
	}
	return key.String(string(b)), true
}

// WithoutRPCAttributes leaves the rpc.system.name and rpc.method attributes off
// successful spans; the span name still names the service and method. Attributes are a
// large part of what a recorded span costs with the OpenTelemetry SDK (a third, measured
// with three attributes), so this is for services where tracing at a high sampling rate
// must cost as little as possible.
func WithoutRPCAttributes() TracingOption {
	return func(c *tracingConfig) { c.noAttrs = true }
}
