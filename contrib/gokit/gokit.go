// Package gokit is the way in from go-kit (github.com/go-kit/kit): adapters between go-kit's
// endpoint.Endpoint, endpoint.Middleware and errors and svckit's, so that a go-kit service
// can move to svckit one endpoint at a time and keep its existing middleware.
//
// It lives in its own module, github.com/svckit/svckit/contrib/gokit, so that svckit itself
// does not depend on go-kit.
//
// # Installing: the genproto pin
//
// go-kit v0.13.0 requires google.golang.org/genproto from 2021, the single module that
// then held every googleapis package; svckit, gRPC and OpenTelemetry use the modules they
// have since moved to (google.golang.org/genproto/googleapis/rpc and .../api). In a module
// that requires both, "go mod tidy" stops with
//
//	ambiguous import: found package google.golang.org/genproto/googleapis/api/httpbody in multiple modules:
//		google.golang.org/genproto v0.0.0-20210917145530-b395a37504d4
//		google.golang.org/genproto/googleapis/api v0.0.0-…
//
// Require a google.golang.org/genproto from after the split (mid-2023 or later) first:
//
//	go get google.golang.org/genproto@latest
//	go mod tidy
//
// tidy may drop the requirement again afterwards; later runs of tidy and builds still
// succeed.
//
//   - [FromKit] turns a go-kit endpoint into a typed svckit [endpoint.Endpoint].
//   - [ToKit] turns a typed svckit endpoint into a go-kit endpoint, to be served by a go-kit
//     transport or wrapped by go-kit middleware.
//   - [Middleware] reuses a go-kit middleware (logging, metrics, circuit breaker, rate
//     limiter) on svckit endpoints.
//   - [KitMiddleware] puts svckit middleware (metrics, tracing, access log) on endpoints that
//     still live in a go-kit service.
//   - [ErrorFromKit] and [ErrorToKit] translate between go-kit's StatusCoder errors and
//     svckit's [svcerr] kinds; [ErrorEncoder] writes svckit errors from a go-kit HTTP server
//     the way svckit's own HTTP transport does.
//
// # Types
//
// go-kit passes requests and responses as interface{}; svckit endpoints are typed. The
// adapters accept a value of the declared type T and also a *T (go-kit decoders return
// either), dereferencing the pointer. A nil value, and a nil *T, become the zero T, as in
// [endpoint.Wrap]. Any other type is an error, never a panic: an InvalidArgument
// [svcerr.Error] for a request that [ToKit] receives, an Internal one for a response that a
// go-kit endpoint returns to [FromKit]. Both name the expected and the actual type. When T
// is itself a pointer type *U, a plain U is not accepted: take its address in the decoder.
//
// # Errors
//
// Errors cross the boundary translated, so that each side sees the kinds of error it
// understands: [FromKit] and [Middleware] pass go-kit errors through [ErrorFromKit], and
// [ToKit] passes svckit errors through [ErrorToKit]. [KitMiddleware] shows the svckit
// middleware translated errors but hands the go-kit service back exactly the error its
// endpoint returned.
package gokit

import (
	"context"
	"fmt"
	"reflect"

	kitendpoint "github.com/go-kit/kit/endpoint"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// FromKit returns a typed svckit endpoint that calls the go-kit endpoint e.
//
// The request is passed to e as it is. A response of type Resp or *Resp is returned as a
// Resp; a nil response is the zero Resp; a response of any other type is an Internal
// [svcerr.Error] naming both types.
//
// Errors that e returns are translated by [ErrorFromKit], so a go-kit error with a
// StatusCode keeps its meaning under svckit. If e succeeds but its response implements
// go-kit's endpoint.Failer and reports a failure, that failure is returned as the error
// (translated the same way), together with the response: svckit endpoints report failures
// as errors, and svckit transports encode them as errors.
func FromKit[Req, Resp any](e kitendpoint.Endpoint) endpoint.Endpoint[Req, Resp] {
	want := typeName[Resp]()
	return func(ctx context.Context, req Req) (Resp, error) {
		v, err := e(ctx, req)
		resp, ok := convert[Resp](v)
		if err != nil {
			return resp, ErrorFromKit(err)
		}
		if !ok {
			return resp, svcerr.New(svcerr.Internal,
				fmt.Sprintf("gokit: go-kit endpoint returned a response of type %T, want %s", v, want))
		}
		if f, isFailer := v.(kitendpoint.Failer); isFailer {
			if ferr := f.Failed(); ferr != nil {
				return resp, ErrorFromKit(ferr)
			}
		}
		return resp, nil
	}
}

// ToKit returns a go-kit endpoint that calls the typed svckit endpoint e.
//
// A request of type Req or *Req is passed to e as a Req; a nil request is the zero Req; a
// request of any other type is not passed to e but answered with an InvalidArgument
// [svcerr.Error] naming both types. Errors are translated by [ErrorToKit], so that a go-kit
// HTTP server answers with the status code of the error's kind; on error the response is
// nil.
func ToKit[Req, Resp any](e endpoint.Endpoint[Req, Resp]) kitendpoint.Endpoint {
	want := typeName[Req]()
	return func(ctx context.Context, request interface{}) (interface{}, error) {
		req, ok := convert[Req](request)
		if !ok {
			return nil, ErrorToKit(svcerr.New(svcerr.InvalidArgument,
				fmt.Sprintf("gokit: request of type %T, want %s", request, want)))
		}
		resp, err := e(ctx, req)
		if err != nil {
			return nil, ErrorToKit(err)
		}
		return resp, nil
	}
}

// Middleware returns svckit middleware that applies the go-kit middleware m. m is called
// once for each endpoint the result wraps, when it is wrapped, just as go-kit calls it
// once per endpoint; so per-endpoint state that m builds (a circuit breaker, a limiter's
// bucket) is per svckit endpoint too.
//
// The svckit endpoint is handed to m as a go-kit endpoint unchanged: m sees the same
// request and response values and errors as any svckit middleware at its place in the
// chain. Errors coming out of m are translated by [ErrorFromKit], so that for example
// go-kit's ratelimit.ErrLimited reaches svckit transports as ResourceExhausted.
// Middleware(nil) is [endpoint.Nop].
func Middleware(m kitendpoint.Middleware) endpoint.Middleware {
	if m == nil {
		return endpoint.Nop
	}
	return func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		k := m(kitendpoint.Endpoint(next))
		return func(ctx context.Context, req any) (any, error) {
			resp, err := k(ctx, req)
			if err != nil {
				return resp, ErrorFromKit(err)
			}
			return resp, nil
		}
	}
}

// KitMiddleware returns go-kit middleware that applies the svckit middleware m, told that
// it wraps the endpoint described by info. m is called once for each go-kit endpoint the
// result wraps, when it is wrapped.
//
// Inside m, errors of the go-kit endpoint are seen translated by [ErrorFromKit], so that
// svckit metrics and logs classify them by kind; errors.Is and errors.As still find the
// original error. If m passes such an error on unchanged, the go-kit service gets back
// exactly the error its endpoint returned, and its transport encodes it as before. An
// error that m itself returns (a timeout, a rejected call) is translated by [ErrorToKit].
//
// Calls whose context carries no [endpoint.Info] get one carrying info, as svckit
// transports do, so code below the endpoint can tell which endpoint it serves.
// KitMiddleware(nil, info) returns its endpoint unchanged.
func KitMiddleware(m endpoint.Middleware, info endpoint.Info) kitendpoint.Middleware {
	pinfo := &info
	return func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		if m == nil {
			return next
		}
		h := m(info, func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			if err != nil {
				return resp, &kitError{orig: err, mapped: ErrorFromKit(err)}
			}
			return resp, nil
		})
		return func(ctx context.Context, request interface{}) (interface{}, error) {
			if endpoint.InfoFrom(ctx) == nil {
				ctx = endpoint.WithInfo(ctx, pinfo)
			}
			resp, err := h(ctx, request)
			if err != nil {
				if ke, ok := err.(*kitError); ok {
					return resp, ke.orig
				}
				return resp, ErrorToKit(err)
			}
			return resp, nil
		}
	}
}

// kitError is how KitMiddleware hands a go-kit endpoint's error to svckit middleware: it
// reads as the original error and unwraps to its svckit translation (whose cause is the
// original), and it lets KitMiddleware give the go-kit service back the original.
type kitError struct {
	orig   error
	mapped error
}

func (e *kitError) Error() string { return e.orig.Error() }
func (e *kitError) Unwrap() error { return e.mapped }

// convert returns v as a T: v itself if it is a T, *v if it is a non-nil *T, and the zero
// T if v is nil or a nil *T. ok is false for any other v.
func convert[T any](v any) (t T, ok bool) {
	switch x := v.(type) {
	case T:
		return x, true
	case *T:
		if x != nil {
			t = *x
		}
		return t, true
	case nil:
		return t, true
	}
	return t, false
}

// typeName returns the name of T as %T prints it.
func typeName[T any]() string { return reflect.TypeFor[T]().String() }
