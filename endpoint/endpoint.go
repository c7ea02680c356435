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

import (
	"context"
	"fmt"
	"reflect"
)

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
// first and its result last. Nil entries are skipped, and Chain() returns next unchanged.
// Chain copies mws, so changing the slice afterwards does not change the chain.
func Chain(mws ...Middleware) Middleware {
	mws = compact(mws)
	return func(info Info, next Handler) Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			next = mws[i](info, next)
		}
		return next
	}
}

// compact returns the non-nil middleware of mws in a new slice.
func compact(mws []Middleware) []Middleware {
	var out []Middleware
	for _, m := range mws {
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// Wrap applies middleware to a typed endpoint and returns a typed endpoint. The first
// middleware is the outermost, and every middleware is called once, now, with info. With no
// middleware other than nil ones, e is returned unchanged.
//
// Middleware may pass on any request and return any response, so Wrap converts at both
// ends: a nil request reaches e as the zero Req, and a nil response (as from a middleware
// that returns nil and an error) reaches the caller as the zero Resp; neither panics. A
// request or response of another type than Req or Resp is a bug in a middleware: e is then
// not called, or the response is dropped, and the call fails with an error naming both
// types (a plain error, so svcerr.KindOf reports it as Internal).
//
// Calls through middleware box the request and the response in interfaces; for request
// and response types that are not pointers, that usually costs an allocation each.
func Wrap[Req, Resp any](info Info, e Endpoint[Req, Resp], mws ...Middleware) Endpoint[Req, Resp] {
	mws = compact(mws)
	if len(mws) == 0 {
		return e
	}
	name := info.FullName()
	h := untyped(name, e)
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](info, h)
	}
	return func(ctx context.Context, req Req) (Resp, error) {
		v, err := h(ctx, req)
		resp, ok := v.(Resp)
		if !ok && v != nil && err == nil {
			err = typeError[Resp](name, "response", v)
		}
		return resp, err
	}
}

// Untyped returns e as a Handler. A nil request reaches e as the zero Req; a request of
// another type than Req fails with an error naming both types, and e is not called.
func Untyped[Req, Resp any](e Endpoint[Req, Resp]) Handler { return untyped("", e) }

func untyped[Req, Resp any](name string, e Endpoint[Req, Resp]) Handler {
	return func(ctx context.Context, req any) (any, error) {
		r, ok := req.(Req)
		if !ok && req != nil {
			return nil, typeError[Req](name, "request", req)
		}
		return e(ctx, r)
	}
}

// typeError reports a request or response v that is not a T.
func typeError[T any](name, what string, v any) error {
	if name != "" {
		name += ": "
	}
	return fmt.Errorf("endpoint: %s%s of type %T, want %s", name, what, v, reflect.TypeFor[T]())
}

// Nop is a Middleware that returns next unchanged.
func Nop(_ Info, next Handler) Handler { return next }
