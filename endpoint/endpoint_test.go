package endpoint_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// tracer returns middleware that appends "name>" to *log before calling next and "<name"
// after it returns.
func tracer(log *[]string, name string) endpoint.Middleware {
	return func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			*log = append(*log, name+">")
			resp, err := next(ctx, req)
			*log = append(*log, "<"+name)
			return resp, err
		}
	}
}

func TestChain(t *testing.T) {
	tests := []struct {
		name string
		mws  []string // "" stands for a nil middleware
		want []string
	}{
		{name: "none", mws: nil, want: []string{"h"}},
		{name: "one", mws: []string{"a"}, want: []string{"a>", "h", "<a"}},
		{name: "first is outermost", mws: []string{"a", "b", "c"},
			want: []string{"a>", "b>", "c>", "h", "<c", "<b", "<a"}},
		{name: "nil skipped", mws: []string{"a", "", "b"}, want: []string{"a>", "b>", "h", "<b", "<a"}},
		{name: "nil at both ends", mws: []string{"", "a", ""}, want: []string{"a>", "h", "<a"}},
		{name: "all nil", mws: []string{"", ""}, want: []string{"h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			var mws []endpoint.Middleware
			for _, n := range tt.mws {
				if n == "" {
					mws = append(mws, nil)
				} else {
					mws = append(mws, tracer(&log, n))
				}
			}
			h := endpoint.Chain(mws...)(endpoint.Info{}, func(context.Context, any) (any, error) {
				log = append(log, "h")
				return "ok", nil
			})
			resp, err := h(context.Background(), nil)
			if resp != "ok" || err != nil {
				t.Fatalf("got (%v, %v), want (ok, nil)", resp, err)
			}
			if !slices.Equal(log, tt.want) {
				t.Errorf("order = %q, want %q", log, tt.want)
			}
		})
	}
}

func TestChainCopiesItsArguments(t *testing.T) {
	var log []string
	mws := []endpoint.Middleware{tracer(&log, "a")}
	chain := endpoint.Chain(mws...)
	mws[0] = tracer(&log, "changed")
	h := chain(endpoint.Info{}, func(context.Context, any) (any, error) { return nil, nil })
	if _, err := h(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a>", "<a"}; !slices.Equal(log, want) {
		t.Errorf("order = %q, want %q", log, want)
	}
}

func TestWrapWithoutMiddlewareReturnsEndpoint(t *testing.T) {
	tests := []struct {
		name string
		mws  []endpoint.Middleware
	}{
		{name: "none"},
		{name: "nil ones", mws: []endpoint.Middleware{nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := endpoint.Wrap(endpoint.Info{}, sumValue, tt.mws...)
			if reflect.ValueOf(got).Pointer() != reflect.ValueOf(sumValue).Pointer() {
				t.Error("Wrap returned a new function, want the endpoint itself")
			}
		})
	}
	// With a middleware it must be a new function, or the test above proves nothing.
	if got := endpoint.Wrap(endpoint.Info{}, sumValue, endpoint.Nop); reflect.ValueOf(got).Pointer() == reflect.ValueOf(sumValue).Pointer() {
		t.Error("Wrap with a middleware returned the endpoint itself")
	}
}

func TestWrapPassesInfoToEveryMiddlewareOnce(t *testing.T) {
	info := endpoint.Info{Service: "calc", Method: "Sum", Transport: "grpc", Client: true, Idempotent: true}
	var seen []endpoint.Info
	record := func(i endpoint.Info, next endpoint.Handler) endpoint.Handler {
		seen = append(seen, i)
		return next
	}
	e := endpoint.Wrap(info, sumValue, record, nil, record, record)
	if len(seen) != 3 {
		t.Fatalf("middleware called %d times at Wrap, want 3", len(seen))
	}
	for i, got := range seen {
		if got != info {
			t.Errorf("middleware %d got %+v, want %+v", i, got, info)
		}
	}
	for range 3 {
		if _, err := e(context.Background(), benchReq{}); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 3 {
		t.Errorf("middleware called %d times after calls, want 3 (once per Wrap, not per call)", len(seen))
	}
}

// checkRoundTrip wraps e in middleware that records what it sees, calls it with req and
// checks that the middleware saw req and the response, and that the caller got the
// response unchanged.
func checkRoundTrip[Req, Resp comparable](t *testing.T, e endpoint.Endpoint[Req, Resp], req Req, want Resp) {
	t.Helper()
	var sawReq, sawResp any
	spy := func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, r any) (any, error) {
			sawReq = r
			resp, err := next(ctx, r)
			sawResp = resp
			return resp, err
		}
	}
	got, err := endpoint.Wrap(endpoint.Info{Service: "s", Method: "M"}, e, spy, endpoint.Nop)(context.Background(), req)
	if err != nil {
		t.Fatalf("err = %v", err)
	}
	if got != want {
		t.Errorf("resp = %v, want %v", got, want)
	}
	if r, ok := sawReq.(Req); !ok || r != req {
		t.Errorf("middleware saw request %#v, want %#v", sawReq, req)
	}
	if r, ok := sawResp.(Resp); !ok || r != want {
		t.Errorf("middleware saw response %#v, want %#v", sawResp, want)
	}
}

func TestWrapRoundTrip(t *testing.T) {
	t.Run("struct", func(t *testing.T) {
		checkRoundTrip(t, sumValue, benchReq{A: 1000, B: 2}, benchResp{V: 1002})
	})
	t.Run("pointer", func(t *testing.T) {
		resp := &benchResp{V: 7}
		checkRoundTrip(t, func(_ context.Context, r *benchReq) (*benchResp, error) { return resp, nil },
			&benchReq{A: 3, B: 4}, resp)
	})
	t.Run("string", func(t *testing.T) {
		checkRoundTrip(t, func(_ context.Context, s string) (string, error) { return strings.ToUpper(s), nil },
			"hello", "HELLO")
	})
	t.Run("interface", func(t *testing.T) {
		checkRoundTrip(t, func(_ context.Context, err error) (error, error) { return err, nil },
			error(context.Canceled), error(context.Canceled))
	})
	t.Run("zero values", func(t *testing.T) {
		checkRoundTrip(t, sumValue, benchReq{}, benchResp{})
	})
}

func TestWrapNil(t *testing.T) {
	errFail := errors.New("fail")
	failNil := func(endpoint.Info, endpoint.Handler) endpoint.Handler {
		return func(context.Context, any) (any, error) { return nil, errFail }
	}
	okNil := func(endpoint.Info, endpoint.Handler) endpoint.Handler {
		return func(context.Context, any) (any, error) { return nil, nil }
	}
	nilRequest := func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, _ any) (any, error) { return next(ctx, nil) }
	}
	info := endpoint.Info{Service: "s", Method: "M"}
	ctx := context.Background()

	t.Run("nil response with error", func(t *testing.T) {
		if resp, err := endpoint.Wrap(info, sumValue, failNil)(ctx, benchIn); resp != (benchResp{}) || err != errFail {
			t.Errorf("struct: got (%v, %v), want zero and %v", resp, err, errFail)
		}
		if resp, err := endpoint.Wrap(info, sumPointer, failNil)(ctx, &benchIn); resp != nil || err != errFail {
			t.Errorf("pointer: got (%v, %v), want nil and %v", resp, err, errFail)
		}
		iface := func(context.Context, string) (error, error) { return errFail, nil }
		if resp, err := endpoint.Wrap(info, iface, failNil)(ctx, ""); resp != nil || err != errFail {
			t.Errorf("interface: got (%v, %v), want nil and %v", resp, err, errFail)
		}
	})
	t.Run("nil response without error", func(t *testing.T) {
		if resp, err := endpoint.Wrap(info, sumValue, okNil)(ctx, benchIn); resp != (benchResp{}) || err != nil {
			t.Errorf("got (%v, %v), want zero and nil", resp, err)
		}
	})
	t.Run("nil request", func(t *testing.T) {
		var got *benchReq = &benchReq{}
		e := func(_ context.Context, r *benchReq) (benchResp, error) { got = r; return benchResp{}, nil }
		if _, err := endpoint.Wrap(info, e, nilRequest)(ctx, &benchIn); err != nil || got != nil {
			t.Errorf("pointer: endpoint got %v (err %v), want nil", got, err)
		}
		var gotValue benchReq
		ev := func(_ context.Context, r benchReq) (benchResp, error) { gotValue = r; return benchResp{}, nil }
		if _, err := endpoint.Wrap(info, ev, nilRequest)(ctx, benchIn); err != nil || gotValue != (benchReq{}) {
			t.Errorf("struct: endpoint got %v (err %v), want zero", gotValue, err)
		}
	})
}

func TestWrapWrongType(t *testing.T) {
	info := endpoint.Info{Service: "calc", Method: "Sum"}
	ctx := context.Background()
	t.Run("response", func(t *testing.T) {
		wrong := func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
			return func(ctx context.Context, req any) (any, error) {
				resp, err := next(ctx, req)
				return &resp, err // a *any, not a benchResp
			}
		}
		resp, err := endpoint.Wrap(info, sumValue, wrong)(ctx, benchIn)
		if resp != (benchResp{}) || err == nil {
			t.Fatalf("got (%v, %v), want zero and an error", resp, err)
		}
		for _, s := range []string{"calc.Sum", "response", "*interface {}", "endpoint_test.benchResp"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %q", err, s)
			}
		}
		if k := svcerr.KindOf(err); k != svcerr.Internal {
			t.Errorf("kind = %v, want internal", k)
		}
	})
	t.Run("response with error keeps the error", func(t *testing.T) {
		errFail := errors.New("fail")
		wrong := func(endpoint.Info, endpoint.Handler) endpoint.Handler {
			return func(context.Context, any) (any, error) { return "not a response", errFail }
		}
		if resp, err := endpoint.Wrap(info, sumValue, wrong)(ctx, benchIn); resp != (benchResp{}) || err != errFail {
			t.Errorf("got (%v, %v), want zero and %v", resp, err, errFail)
		}
	})
	t.Run("request", func(t *testing.T) {
		wrong := func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
			return func(ctx context.Context, _ any) (any, error) { return next(ctx, 42) }
		}
		called := false
		e := func(context.Context, benchReq) (benchResp, error) { called = true; return benchResp{}, nil }
		_, err := endpoint.Wrap(info, e, wrong)(ctx, benchIn)
		if called {
			t.Error("endpoint called with a request of the wrong type")
		}
		if err == nil || !strings.Contains(err.Error(), "calc.Sum: request of type int, want endpoint_test.benchReq") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestUntyped(t *testing.T) {
	h := endpoint.Untyped(sumValue)
	ctx := context.Background()
	tests := []struct {
		name    string
		req     any
		want    any
		wantErr string
	}{
		{name: "typed", req: benchReq{A: 1, B: 2}, want: benchResp{V: 3}},
		{name: "nil", req: nil, want: benchResp{}},
		{name: "pointer is another type", req: &benchReq{A: 1}, want: nil,
			wantErr: "endpoint: request of type *endpoint_test.benchReq, want endpoint_test.benchReq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h(ctx, tt.req)
			if got != tt.want {
				t.Errorf("resp = %#v, want %#v", got, tt.want)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNop(t *testing.T) {
	h := func(context.Context, any) (any, error) { return nil, nil }
	if got := endpoint.Nop(endpoint.Info{}, h); reflect.ValueOf(got).Pointer() != reflect.ValueOf(h).Pointer() {
		t.Error("Nop did not return next")
	}
}

func TestInfoContext(t *testing.T) {
	if got := endpoint.InfoFrom(context.Background()); got != nil {
		t.Errorf("InfoFrom(empty) = %+v, want nil", got)
	}
	a := &endpoint.Info{Service: "a", Method: "A"}
	b := &endpoint.Info{Service: "b", Method: "B"}
	ctxA := endpoint.WithInfo(context.Background(), a)
	ctxB := endpoint.WithInfo(ctxA, b)
	if got := endpoint.InfoFrom(ctxA); got != a {
		t.Errorf("InfoFrom(ctxA) = %+v, want %+v", got, a)
	}
	if got := endpoint.InfoFrom(ctxB); got != b {
		t.Errorf("InfoFrom(ctxB) = %+v, want the innermost %+v", got, b)
	}
	if got := endpoint.InfoFrom(endpoint.WithInfo(context.Background(), nil)); got != nil {
		t.Errorf("InfoFrom(WithInfo(nil)) = %+v, want nil", got)
	}
	// Another package's value under an equal-looking key must not be mistaken for Info.
	type infoKey struct{}
	if got := endpoint.InfoFrom(context.WithValue(context.Background(), infoKey{}, a)); got != nil {
		t.Errorf("InfoFrom with a foreign key = %+v, want nil", got)
	}
}

func TestInfoFullName(t *testing.T) {
	tests := []struct {
		info endpoint.Info
		want string
	}{
		{endpoint.Info{Service: "addsvc", Method: "Sum"}, "addsvc.Sum"},
		{endpoint.Info{Service: "shop.orders", Method: "Place", Transport: "grpc"}, "shop.orders.Place"},
		{endpoint.Info{Method: "Sum"}, ".Sum"},
		{endpoint.Info{}, "."},
	}
	for _, tt := range tests {
		if got := tt.info.FullName(); got != tt.want {
			t.Errorf("%+v.FullName() = %q, want %q", tt.info, got, tt.want)
		}
	}
}
