package observe

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
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
// context: the remote span context a transport extracted, or the caller's span. It has
// the attributes rpc.system (the transport), rpc.service and rpc.method, unless
// WithoutRPCAttributes is given.
//
// A failed call's span gets the svckit.error.kind attribute. Following the OpenTelemetry
// semantic conventions for RPC, a client span is marked failed, with status Error and an
// exception event, for every error, a server span only for a ServerFault.
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
		if !cfg.noAttrs {
			attrs = []attribute.KeyValue{
				semconv.RPCSystemKey.String(info.Transport),
				semconv.RPCService(info.Service),
				semconv.RPCMethod(info.Method),
			}
		}
		client := info.Client
		return func(ctx context.Context, req any) (any, error) {
			ctx, span := tracer.Start(ctx, name, opts...)
			recording := span.IsRecording()
			if recording && len(attrs) > 0 {
				// Set after the start rather than with trace.WithAttributes, which copies
				// them once more per call; samplers therefore do not see them.
				span.SetAttributes(attrs...)
			}
			resp, err := next(ctx, req)
			if err != nil && recording {
				k := svcerr.KindOf(err)
				if int(k) < numKinds {
					span.SetAttributes(kindAttrs[k])
				} else {
					span.SetAttributes(ErrorKindKey.String(k.String()))
				}
				if client || ServerFault(k) {
					span.RecordError(err)
					span.SetStatus(codes.Error, err.Error())
				}
			}
			span.End()
			return resp, err
		}
	}
}

// TracingOption configures Tracing.
type TracingOption func(*tracingConfig)

type tracingConfig struct {
	noAttrs bool
}

// WithoutRPCAttributes leaves the rpc.system, rpc.service and rpc.method attributes off
// successful spans; the span name still names the service and method. Attributes are a
// large part of what a recorded span costs with the OpenTelemetry SDK (a third, measured
// with three attributes), so this is for services where tracing at a high sampling rate
// must cost as little as possible.
func WithoutRPCAttributes() TracingOption {
	return func(c *tracingConfig) { c.noAttrs = true }
}
