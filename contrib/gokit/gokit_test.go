package gokit_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	kitendpoint "github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/ratelimit"
	"golang.org/x/time/rate"

	"github.com/svckit/svckit/contrib/gokit"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

type sumRequest struct{ A, B int }

type sumResponse struct{ V int }

// failResponse is a go-kit style response that carries a business error (endpoint.Failer).
type failResponse struct {
	V   int
	Err error
}

func (r failResponse) Failed() error { return r.Err }

// kitStatusError is a go-kit style error that knows its HTTP status (kithttp.StatusCoder).
type kitStatusError struct {
	code int
	msg  string
}

func (e kitStatusError) Error() string   { return e.msg }
func (e kitStatusError) StatusCode() int { return e.code }

func sum(_ context.Context, req sumRequest) (sumResponse, error) {
	return sumResponse{V: req.A + req.B}, nil
}

func kitReturning(v any, err error) kitendpoint.Endpoint {
	return func(context.Context, interface{}) (interface{}, error) { return v, err }
}

func TestFromKit(t *testing.T) {
	errPlain := errors.New("disk on fire")
	errStatus := kitStatusError{code: 404, msg: "user 7 not found"}
	tests := []struct {
		name     string
		v        any
		err      error
		want     sumResponse
		wantKind svcerr.Kind // Unknown: no error
		wantMsg  string      // substring of the error text
		wantIs   error       // errors.Is(err, wantIs) must hold
	}{
		{name: "value", v: sumResponse{V: 3}, want: sumResponse{V: 3}},
		{name: "pointer", v: &sumResponse{V: 4}, want: sumResponse{V: 4}},
		{name: "nil", v: nil},
		{name: "nil pointer", v: (*sumResponse)(nil)},
		{name: "wrong type", v: "three", wantKind: svcerr.Internal,
			wantMsg: "response of type string, want gokit_test.sumResponse"},
		{name: "wrong pointer type", v: &sumRequest{}, wantKind: svcerr.Internal,
			wantMsg: "type *gokit_test.sumRequest, want gokit_test.sumResponse"},
		{name: "status coder", err: errStatus, wantKind: svcerr.NotFound, wantMsg: "user 7 not found", wantIs: errStatus},
		{name: "wrapped status coder", err: fmt.Errorf("lookup: %w", errStatus), wantKind: svcerr.NotFound, wantIs: errStatus},
		{name: "plain error", err: errPlain, wantKind: svcerr.Internal, wantIs: errPlain},
		{name: "context error", err: context.DeadlineExceeded, wantKind: svcerr.DeadlineExceeded},
		{name: "rate limited", err: ratelimit.ErrLimited, wantKind: svcerr.ResourceExhausted, wantIs: ratelimit.ErrLimited},
		{name: "svcerr", err: svcerr.New(svcerr.Aborted, "conflict"), wantKind: svcerr.Aborted, wantMsg: "conflict"},
		{name: "error and response", v: sumResponse{V: 5}, err: errStatus, want: sumResponse{V: 5}, wantKind: svcerr.NotFound},
		{name: "error and wrong type", v: 5, err: errStatus, wantKind: svcerr.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := gokit.FromKit[sumRequest, sumResponse](kitReturning(tt.v, tt.err))
			got, err := e(context.Background(), sumRequest{A: 1, B: 2})
			if got != tt.want {
				t.Errorf("response = %+v, want %+v", got, tt.want)
			}
			if tt.wantKind == svcerr.Unknown {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("err = nil, want kind %v", tt.wantKind)
			}
			if k := svcerr.KindOf(err); k != tt.wantKind {
				t.Errorf("kind = %v, want %v (err %v)", k, tt.wantKind, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
		})
	}
}

func TestFromKitPassesRequest(t *testing.T) {
	var seen any
	kit := func(_ context.Context, req interface{}) (interface{}, error) {
		seen = req
		r := req.(sumRequest)
		return sumResponse{V: r.A * r.B}, nil
	}
	got, err := gokit.FromKit[sumRequest, sumResponse](kit)(context.Background(), sumRequest{A: 6, B: 7})
	if err != nil || got.V != 42 {
		t.Fatalf("got %+v, %v; want {V:42}, nil", got, err)
	}
	if seen != (sumRequest{A: 6, B: 7}) {
		t.Errorf("go-kit endpoint saw %#v", seen)
	}
}

func TestFromKitFailer(t *testing.T) {
	bizErr := kitStatusError{code: 409, msg: "already paid"}
	tests := []struct {
		name     string
		resp     failResponse
		wantKind svcerr.Kind
	}{
		{name: "ok", resp: failResponse{V: 1}},
		{name: "failed", resp: failResponse{V: 2, Err: bizErr}, wantKind: svcerr.AlreadyExists},
		{name: "failed plain", resp: failResponse{V: 3, Err: errors.New("boom")}, wantKind: svcerr.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []any{tt.resp, &tt.resp} {
				got, err := gokit.FromKit[sumRequest, failResponse](kitReturning(v, nil))(context.Background(), sumRequest{})
				if got.V != tt.resp.V {
					t.Errorf("%T: response V = %d, want %d", v, got.V, tt.resp.V)
				}
				if k := svcerr.KindOf(err); k != tt.wantKind {
					t.Errorf("%T: kind = %v, want %v (err %v)", v, k, tt.wantKind, err)
				}
				if tt.resp.Err != nil && !errors.Is(err, tt.resp.Err) {
					t.Errorf("%T: errors.Is(%v, %v) = false", v, err, tt.resp.Err)
				}
			}
		})
	}
}

func TestToKit(t *testing.T) {
	var seen sumRequest
	e := func(_ context.Context, req sumRequest) (sumResponse, error) {
		seen = req
		switch {
		case req.A < 0:
			return sumResponse{}, svcerr.Invalid("a", "must not be negative")
		case req.A == 99:
			return sumResponse{}, errors.New("secret internal detail")
		}
		return sumResponse{V: req.A + req.B}, nil
	}
	tests := []struct {
		name       string
		req        any
		want       any
		wantSeen   sumRequest
		wantKind   svcerr.Kind
		wantStatus int
		wantMsg    string
	}{
		{name: "value", req: sumRequest{A: 1, B: 2}, want: sumResponse{V: 3}, wantSeen: sumRequest{A: 1, B: 2}},
		{name: "pointer", req: &sumRequest{A: 2, B: 2}, want: sumResponse{V: 4}, wantSeen: sumRequest{A: 2, B: 2}},
		{name: "nil", req: nil, want: sumResponse{}},
		{name: "nil pointer", req: (*sumRequest)(nil), want: sumResponse{}},
		{name: "wrong type", req: map[string]int{"a": 1}, wantKind: svcerr.InvalidArgument, wantStatus: 400,
			wantMsg: "request of type map[string]int, want gokit_test.sumRequest"},
		{name: "wrong pointer type", req: &sumResponse{}, wantKind: svcerr.InvalidArgument, wantStatus: 400,
			wantMsg: "type *gokit_test.sumResponse, want gokit_test.sumRequest"},
		{name: "svcerr", req: sumRequest{A: -1}, wantSeen: sumRequest{A: -1}, wantKind: svcerr.InvalidArgument,
			wantStatus: 400, wantMsg: "a: must not be negative"},
		{name: "plain error", req: sumRequest{A: 99}, wantSeen: sumRequest{A: 99}, wantKind: svcerr.Internal,
			wantStatus: 500, wantMsg: "secret internal detail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen = sumRequest{A: -100}
			got, err := gokit.ToKit(e)(context.Background(), tt.req)
			if tt.wantKind == svcerr.Unknown {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if got != tt.want {
					t.Errorf("response = %#v, want %#v", got, tt.want)
				}
				if seen != tt.wantSeen {
					t.Errorf("endpoint saw %+v, want %+v", seen, tt.wantSeen)
				}
				return
			}
			if got != nil {
				t.Errorf("response = %#v, want nil on error", got)
			}
			if k := svcerr.KindOf(err); k != tt.wantKind {
				t.Errorf("kind = %v, want %v", k, tt.wantKind)
			}
			sc, ok := err.(interface{ StatusCode() int })
			if !ok {
				t.Fatalf("%T does not implement go-kit's StatusCoder", err)
			}
			if sc.StatusCode() != tt.wantStatus {
				t.Errorf("StatusCode = %d, want %d", sc.StatusCode(), tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantMsg)
			}
			if tt.wantKind == svcerr.InvalidArgument && strings.HasPrefix(tt.name, "wrong") && seen != (sumRequest{A: -100}) {
				t.Errorf("endpoint was called with %+v for a mistyped request", seen)
			}
		})
	}
}

func TestToKitPointerRequestType(t *testing.T) {
	// With a pointer Req, the pointer is passed through as it is.
	e := func(_ context.Context, req *sumRequest) (*sumResponse, error) {
		if req == nil {
			return nil, svcerr.New(svcerr.InvalidArgument, "no request")
		}
		return &sumResponse{V: req.A + req.B}, nil
	}
	in := &sumRequest{A: 20, B: 22}
	got, err := gokit.ToKit(e)(context.Background(), in)
	if err != nil || got.(*sumResponse).V != 42 {
		t.Fatalf("got %#v, %v", got, err)
	}
	// A plain value for a pointer Req is a type mismatch, not a silent copy.
	_, err = gokit.ToKit(e)(context.Background(), sumRequest{})
	if svcerr.KindOf(err) != svcerr.InvalidArgument || !strings.Contains(err.Error(), "want *gokit_test.sumRequest") {
		t.Errorf("err = %v, want InvalidArgument naming *gokit_test.sumRequest", err)
	}
}

func TestRoundTripInProcess(t *testing.T) {
	// svckit → go-kit → svckit gives back an equivalent typed endpoint.
	back := gokit.FromKit[sumRequest, sumResponse](gokit.ToKit(sum))
	got, err := back(context.Background(), sumRequest{A: 40, B: 2})
	if err != nil || got.V != 42 {
		t.Fatalf("got %+v, %v", got, err)
	}
	// Errors keep their kind both ways.
	fail := func(context.Context, sumRequest) (sumResponse, error) {
		return sumResponse{}, svcerr.New(svcerr.Aborted, "retry the transaction")
	}
	_, err = gokit.FromKit[sumRequest, sumResponse](gokit.ToKit(fail))(context.Background(), sumRequest{})
	var se *svcerr.Error
	if !errors.As(err, &se) || se.Kind != svcerr.Aborted || se.Message != "retry the transaction" {
		t.Errorf("err = %v, want the original aborted error", err)
	}
}

// tracer records the order in which middleware sees a call.
type tracer struct{ steps []string }

func (tr *tracer) kit(name string) kitendpoint.Middleware {
	return func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		return func(ctx context.Context, req interface{}) (interface{}, error) {
			tr.steps = append(tr.steps, name+">")
			defer func() { tr.steps = append(tr.steps, "<"+name) }()
			return next(ctx, req)
		}
	}
}

func (tr *tracer) svc(name string) endpoint.Middleware {
	return func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			tr.steps = append(tr.steps, name+">")
			defer func() { tr.steps = append(tr.steps, "<"+name) }()
			return next(ctx, req)
		}
	}
}

func (tr *tracer) endpoint(ctx context.Context, req sumRequest) (sumResponse, error) {
	tr.steps = append(tr.steps, "endpoint")
	return sum(ctx, req)
}

func TestMiddlewareOrder(t *testing.T) {
	want := []string{"a>", "b>", "c>", "d>", "endpoint", "<d", "<c", "<b", "<a"}
	tests := []struct {
		name  string
		build func(tr *tracer) endpoint.Endpoint[sumRequest, sumResponse]
	}{
		{name: "svckit chain with go-kit middleware inside", build: func(tr *tracer) endpoint.Endpoint[sumRequest, sumResponse] {
			return endpoint.Wrap(endpoint.Info{Service: "calc", Method: "Sum"}, tr.endpoint,
				tr.svc("a"), gokit.Middleware(kitendpoint.Chain(tr.kit("b"), tr.kit("c"))), tr.svc("d"))
		}},
		{name: "go-kit chain with svckit middleware inside", build: func(tr *tracer) endpoint.Endpoint[sumRequest, sumResponse] {
			info := endpoint.Info{Service: "calc", Method: "Sum"}
			mw := kitendpoint.Chain(tr.kit("a"), gokit.KitMiddleware(endpoint.Chain(tr.svc("b"), tr.svc("c")), info), tr.kit("d"))
			return gokit.FromKit[sumRequest, sumResponse](mw(gokit.ToKit(tr.endpoint)))
		}},
		{name: "alternating", build: func(tr *tracer) endpoint.Endpoint[sumRequest, sumResponse] {
			info := endpoint.Info{Service: "calc", Method: "Sum"}
			inner := endpoint.Wrap(info, tr.endpoint, gokit.Middleware(tr.kit("d")))
			kit := kitendpoint.Chain(tr.kit("b"), gokit.KitMiddleware(tr.svc("c"), info))(gokit.ToKit(inner))
			return endpoint.Wrap(info, gokit.FromKit[sumRequest, sumResponse](kit), tr.svc("a"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &tracer{}
			got, err := tt.build(tr)(context.Background(), sumRequest{A: 2, B: 3})
			if err != nil || got.V != 5 {
				t.Fatalf("got %+v, %v", got, err)
			}
			if !reflect.DeepEqual(tr.steps, want) {
				t.Errorf("steps = %v, want %v", tr.steps, want)
			}
		})
	}
}

func TestMiddlewareBuiltOncePerEndpoint(t *testing.T) {
	built := 0
	counting := func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		built++
		return next
	}
	mw := gokit.Middleware(counting)
	a := endpoint.Wrap(endpoint.Info{Method: "A"}, sum, mw)
	b := endpoint.Wrap(endpoint.Info{Method: "B"}, sum, mw)
	for range 5 {
		if _, err := a(context.Background(), sumRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := b(context.Background(), sumRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if built != 2 {
		t.Errorf("go-kit middleware built %d times, want 2 (once per endpoint)", built)
	}
}

func TestMiddlewareRateLimiter(t *testing.T) {
	// A burst of one and no refill: each endpoint's first call passes, the rest are limited.
	mw := gokit.Middleware(ratelimit.NewErroringLimiter(rate.NewLimiter(0, 1)))
	e := endpoint.Wrap(endpoint.Info{Service: "calc", Method: "Sum"}, sum, mw)
	if got, err := e(context.Background(), sumRequest{A: 1, B: 1}); err != nil || got.V != 2 {
		t.Fatalf("first call: %+v, %v", got, err)
	}
	_, err := e(context.Background(), sumRequest{A: 1, B: 1})
	if k := svcerr.KindOf(err); k != svcerr.ResourceExhausted {
		t.Errorf("second call: kind %v (err %v), want resource_exhausted", k, err)
	}
	if !svcerr.KindOf(err).Retryable() {
		t.Errorf("a rate-limited call should be retryable")
	}
	if !errors.Is(err, ratelimit.ErrLimited) {
		t.Errorf("errors.Is(err, ratelimit.ErrLimited) = false for %v", err)
	}
}

func TestMiddlewareSeesEndpointErrors(t *testing.T) {
	// The go-kit middleware sees svckit errors unchanged, and so can count them.
	var seen error
	observe := func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		return func(ctx context.Context, req interface{}) (interface{}, error) {
			resp, err := next(ctx, req)
			seen = err
			return resp, err
		}
	}
	want := svcerr.New(svcerr.NotFound, "no such sum")
	fail := func(context.Context, sumRequest) (sumResponse, error) { return sumResponse{}, want }
	_, err := endpoint.Wrap(endpoint.Info{}, fail, gokit.Middleware(observe))(context.Background(), sumRequest{})
	if seen != want || err != want {
		t.Errorf("go-kit middleware saw %v and the caller got %v, want %v for both", seen, err, want)
	}
}

func TestMiddlewareNil(t *testing.T) {
	e := endpoint.Wrap(endpoint.Info{}, sum, gokit.Middleware(nil))
	if got, err := e(context.Background(), sumRequest{A: 1, B: 2}); err != nil || got.V != 3 {
		t.Errorf("got %+v, %v", got, err)
	}
	k := gokit.KitMiddleware(nil, endpoint.Info{})(gokit.ToKit(sum))
	if got, err := k(context.Background(), sumRequest{A: 1, B: 2}); err != nil || got != (sumResponse{V: 3}) {
		t.Errorf("got %+v, %v", got, err)
	}
}

func TestKitMiddleware(t *testing.T) {
	info := endpoint.Info{Service: "users", Method: "Get", Transport: "http"}
	orig := kitStatusError{code: 404, msg: "user 7 not found"}
	var (
		gotInfo    endpoint.Info
		seenKind   svcerr.Kind
		ctxInfo    *endpoint.Info
		replaceErr error
	)
	observe := func(i endpoint.Info, next endpoint.Handler) endpoint.Handler {
		gotInfo = i
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			seenKind = svcerr.KindOf(err)
			if replaceErr != nil {
				return nil, replaceErr
			}
			return resp, err
		}
	}
	kit := func(ctx context.Context, req interface{}) (interface{}, error) {
		ctxInfo = endpoint.InfoFrom(ctx)
		if req.(sumRequest).A == 7 {
			return nil, orig
		}
		return sumResponse{V: 1}, nil
	}
	e := gokit.KitMiddleware(observe, info)(kit)
	if gotInfo != info {
		t.Errorf("middleware got info %+v, want %+v", gotInfo, info)
	}

	t.Run("success", func(t *testing.T) {
		got, err := e(context.Background(), sumRequest{})
		if err != nil || got != (sumResponse{V: 1}) {
			t.Fatalf("got %v, %v", got, err)
		}
		if ctxInfo == nil || *ctxInfo != info {
			t.Errorf("InfoFrom(ctx) = %v, want %+v", ctxInfo, info)
		}
	})
	t.Run("info in context kept", func(t *testing.T) {
		mine := &endpoint.Info{Service: "other"}
		if _, err := e(endpoint.WithInfo(context.Background(), mine), sumRequest{}); err != nil {
			t.Fatal(err)
		}
		if ctxInfo != mine {
			t.Errorf("InfoFrom(ctx) = %+v, want the caller's %+v", ctxInfo, mine)
		}
	})
	t.Run("go-kit error passes back unchanged", func(t *testing.T) {
		_, err := e(context.Background(), sumRequest{A: 7})
		if seenKind != svcerr.NotFound {
			t.Errorf("svckit middleware saw kind %v, want not_found", seenKind)
		}
		if err != error(orig) {
			t.Errorf("go-kit service got %#v, want exactly %#v", err, orig)
		}
	})
	t.Run("middleware error becomes a StatusCoder", func(t *testing.T) {
		replaceErr = svcerr.New(svcerr.ResourceExhausted, "slow down")
		defer func() { replaceErr = nil }()
		_, err := e(context.Background(), sumRequest{})
		sc, ok := err.(interface{ StatusCode() int })
		if !ok || sc.StatusCode() != 429 {
			t.Fatalf("err = %#v, want a StatusCoder with 429", err)
		}
		if !errors.Is(err, replaceErr) {
			t.Errorf("errors.Is(err, middleware's error) = false")
		}
	})
}

func TestErrorFromKit(t *testing.T) {
	plain := errors.New("plain")
	svc := svcerr.New(svcerr.NotFound, "gone")
	tests := []struct {
		name     string
		err      error
		same     bool // returned unchanged
		wantKind svcerr.Kind
		wantMsg  string
	}{
		{name: "nil", err: nil, same: true, wantKind: svcerr.Unknown},
		{name: "plain", err: plain, same: true, wantKind: svcerr.Internal},
		{name: "svcerr", err: svc, same: true, wantKind: svcerr.NotFound},
		{name: "wrapped svcerr", err: fmt.Errorf("x: %w", svc), same: true, wantKind: svcerr.NotFound},
		{name: "from ErrorToKit", err: gokit.ErrorToKit(plain), same: true, wantKind: svcerr.Internal},
		{name: "400", err: kitStatusError{400, "bad a"}, wantKind: svcerr.InvalidArgument, wantMsg: "bad a"},
		{name: "401", err: kitStatusError{401, "who"}, wantKind: svcerr.Unauthenticated, wantMsg: "who"},
		{name: "403", err: kitStatusError{403, "no"}, wantKind: svcerr.PermissionDenied, wantMsg: "no"},
		{name: "404", err: kitStatusError{404, "gone"}, wantKind: svcerr.NotFound, wantMsg: "gone"},
		{name: "409", err: kitStatusError{409, "dup"}, wantKind: svcerr.AlreadyExists, wantMsg: "dup"},
		{name: "429", err: kitStatusError{429, "slow"}, wantKind: svcerr.ResourceExhausted, wantMsg: "slow"},
		{name: "503", err: kitStatusError{503, "later"}, wantKind: svcerr.Unavailable, wantMsg: "later"},
		{name: "500", err: kitStatusError{500, "oops"}, wantKind: svcerr.Internal, wantMsg: "oops"},
		{name: "rate limited", err: ratelimit.ErrLimited, wantKind: svcerr.ResourceExhausted, wantMsg: "rate limit exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := gokit.ErrorFromKit(tt.err)
			if tt.same && got != tt.err {
				t.Errorf("ErrorFromKit(%v) = %v, want it unchanged", tt.err, got)
			}
			if k := svcerr.KindOf(got); k != tt.wantKind {
				t.Errorf("kind = %v, want %v", k, tt.wantKind)
			}
			if tt.wantMsg != "" {
				se := svcerr.From(got)
				if se.Message != tt.wantMsg {
					t.Errorf("message = %q, want %q", se.Message, tt.wantMsg)
				}
				if !errors.Is(got, tt.err) {
					t.Errorf("the original error is lost from the chain")
				}
			}
		})
	}
}

func TestErrorToKit(t *testing.T) {
	teapot := kitStatusError{418, "short and stout"}
	tests := []struct {
		name       string
		err        error
		same       bool
		wantStatus int
		wantJSON   string
	}{
		{name: "nil", err: nil, same: true},
		{name: "already a StatusCoder", err: teapot, same: true, wantStatus: 418},
		{name: "plain", err: errors.New("db password is hunter2"), wantStatus: 500,
			wantJSON: `{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"internal error","kind":"internal"}`},
		{name: "not found", err: svcerr.New(svcerr.NotFound, "no user 7"), wantStatus: 404,
			wantJSON: `{"type":"about:blank","title":"Not Found","status":404,"detail":"no user 7","kind":"not_found"}`},
		{name: "fields and meta", err: svcerr.Invalid("a", "required").WithMeta("reason", "x"), wantStatus: 400,
			wantJSON: `{"type":"about:blank","title":"Bad Request","status":400,"detail":"a: required","kind":"invalid_argument","errors":[{"field":"a","description":"required"}],"meta":{"reason":"x"}}`},
		{name: "canceled", err: fmt.Errorf("query: %w", context.Canceled), wantStatus: 499,
			wantJSON: `{"type":"about:blank","title":"Client Closed Request","status":499,"detail":"request canceled","kind":"canceled"}`},
		{name: "original status kept", err: gokit.ErrorFromKit(teapot), wantStatus: 418},
		{name: "reclassified status not kept", err: &svcerr.Error{Kind: svcerr.Unavailable, Message: "m", Cause: teapot}, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := gokit.ErrorToKit(tt.err)
			if tt.same {
				if got != tt.err {
					t.Errorf("ErrorToKit(%v) = %v, want it unchanged", tt.err, got)
				}
			} else {
				if !errors.Is(got, tt.err) || got.Error() != tt.err.Error() {
					t.Errorf("ErrorToKit(%v) = %v: does not read as or unwrap to the original", tt.err, got)
				}
				if svcerr.KindOf(got) != svcerr.KindOf(tt.err) {
					t.Errorf("kind changed from %v to %v", svcerr.KindOf(tt.err), svcerr.KindOf(got))
				}
			}
			if tt.err == nil {
				return
			}
			if sc := got.(interface{ StatusCode() int }).StatusCode(); sc != tt.wantStatus {
				t.Errorf("StatusCode = %d, want %d", sc, tt.wantStatus)
			}
			if tt.wantJSON != "" {
				m, ok := got.(interface{ MarshalJSON() ([]byte, error) })
				if !ok {
					t.Fatalf("%T is not a json.Marshaler", got)
				}
				b, err := m.MarshalJSON()
				if err != nil || string(b) != tt.wantJSON {
					t.Errorf("MarshalJSON = %s, %v\nwant %s", b, err, tt.wantJSON)
				}
			}
		})
	}
}

func BenchmarkFromKit(b *testing.B) {
	e := gokit.FromKit[sumRequest, sumResponse](func(_ context.Context, req interface{}) (interface{}, error) {
		r := req.(sumRequest)
		return sumResponse{V: r.A + r.B}, nil
	})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = e(ctx, sumRequest{A: 1, B: 2})
	}
}

func BenchmarkToKit(b *testing.B) {
	e := gokit.ToKit(sum)
	ctx := context.Background()
	req := &sumRequest{A: 1, B: 2}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = e(ctx, req)
	}
}

func BenchmarkMiddleware(b *testing.B) {
	nop := func(next kitendpoint.Endpoint) kitendpoint.Endpoint { return next }
	e := endpoint.Wrap(endpoint.Info{Method: "Sum"}, sum, gokit.Middleware(nop))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = e(ctx, sumRequest{A: 1, B: 2})
	}
}
