// Package endpoint is the middle layer of a svckit service: one typed endpoint per service
// method, and middleware written once that decorates every endpoint on every transport.
//
// A service method becomes an [Endpoint] with concrete request and response types, so
// service code never type-asserts. Middleware sees the transport-neutral [Handler] form and
// is told, once at construction, which endpoint it wraps ([Info]); that lets it resolve
// per-endpoint state such as metric series or policies up front instead of on every call.
// [Wrap] joins the two: it applies a [Chain] of middleware to a typed endpoint and returns a
// typed endpoint again. Nothing on the call path uses reflection.
package endpoint

import "context"

// Endpoint is one service method in transport-neutral form: a typed request in, a typed
// response or an error out.
type Endpoint[Req, Resp any] func(ctx context.Context, req Req) (Resp, error)

// Handler is the untyped form of an endpoint that middleware sees. req and the returned
// value are the endpoint's request and response values.
type Handler func(ctx context.Context, req any) (any, error)

// Middleware decorates a Handler. It is called once per endpoint and transport when the
// endpoint is wrapped; info describes that endpoint.
type Middleware func(info Info, next Handler) Handler

// Info describes the endpoint a middleware wraps.
type Info struct {
	// Service is the name of the service the endpoint belongs to, for example "addsvc".
	Service string
	// Method is the name of the service method, for example "Sum".
	Method string
	// Transport names where calls come from or go to: "http", "grpc", "nats", "inproc".
	Transport string
	// Client is true when the endpoint is an outgoing call made through a client.
	Client bool
	// Streaming is true for a server-streaming method; the response is then a stream.
	Streaming bool
	// Idempotent is true when calling the method twice has the effect of calling it once;
	// retry middleware only retries idempotent methods.
	Idempotent bool
}

// FullName returns "Service.Method".
func (i Info) FullName() string { return i.Service + "." + i.Method }

// Chain composes middleware into one. The first middleware is the outermost: it sees a call
// first and its result last.
func Chain(mws ...Middleware) Middleware {
	return func(info Info, next Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				next = mws[i](info, next)
			}
		}
		return next
	}
}

// Wrap applies middleware to a typed endpoint and returns a typed endpoint. The first
// middleware is the outermost. With no middleware, e is returned unchanged.
func Wrap[Req, Resp any](info Info, e Endpoint[Req, Resp], mws ...Middleware) Endpoint[Req, Resp] {
	if len(mws) == 0 {
		return e
	}
	h := Chain(mws...)(info, func(ctx context.Context, req any) (any, error) {
		r, _ := req.(Req) // a nil interface becomes the zero Req
		return e(ctx, r)
	})
	return func(ctx context.Context, req Req) (Resp, error) {
		v, err := h(ctx, req)
		resp, _ := v.(Resp)
		return resp, err
	}
}

// Untyped returns e as a Handler.
func Untyped[Req, Resp any](e Endpoint[Req, Resp]) Handler {
	return func(ctx context.Context, req any) (any, error) {
		r, _ := req.(Req)
		return e(ctx, r)
	}
}

// Nop is a Middleware that returns next unchanged.
func Nop(_ Info, next Handler) Handler { return next }
