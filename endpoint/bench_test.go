package endpoint_test

import (
	"context"
	"testing"

	"github.com/svckit/svckit/endpoint"
)

type benchReq struct{ A, B int }
type benchResp struct{ V int }

// The operands are large enough that the response is not one of the small integers the
// runtime boxes without allocating, so the numbers show the general case.
var benchIn = benchReq{A: 1000, B: 2000}

func sumValue(_ context.Context, r benchReq) (benchResp, error) { return benchResp{V: r.A + r.B}, nil }

func sumPointer(_ context.Context, r *benchReq) (*benchResp, error) {
	return &benchResp{V: r.A + r.B}, nil
}

// pass is a middleware that only calls the next handler.
func pass(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, req any) (any, error) { return next(ctx, req) }
}

func passN(n int) []endpoint.Middleware {
	mws := make([]endpoint.Middleware, n)
	for i := range mws {
		mws[i] = pass
	}
	return mws
}

var (
	sinkValue   benchResp
	sinkPointer *benchResp
)

func benchValue(b *testing.B, e endpoint.Endpoint[benchReq, benchResp]) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := e(ctx, benchIn)
		if err != nil {
			b.Fatal(err)
		}
		sinkValue = resp
	}
	if sinkValue.V != 3000 {
		b.Fatalf("V = %d, want 3000", sinkValue.V)
	}
}

func benchPointer(b *testing.B, e endpoint.Endpoint[*benchReq, *benchResp]) {
	b.Helper()
	ctx := context.Background()
	req := &benchReq{A: 1000, B: 2000}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := e(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		sinkPointer = resp
	}
	if sinkPointer.V != 3000 {
		b.Fatalf("V = %d, want 3000", sinkPointer.V)
	}
}

var benchInfo = endpoint.Info{Service: "calc", Method: "Sum", Transport: "inproc"}

// BenchmarkDirect calls the endpoint function as a plain function value.
func BenchmarkDirect(b *testing.B) {
	b.Run("value", func(b *testing.B) { benchValue(b, sumValue) })
	b.Run("pointer", func(b *testing.B) { benchPointer(b, sumPointer) })
}

// BenchmarkWrap0 calls an endpoint wrapped with no middleware, or only with nil ones (as
// when optional middleware is not configured).
func BenchmarkWrap0(b *testing.B) {
	b.Run("value", func(b *testing.B) { benchValue(b, endpoint.Wrap(benchInfo, sumValue)) })
	b.Run("pointer", func(b *testing.B) { benchPointer(b, endpoint.Wrap(benchInfo, sumPointer)) })
	b.Run("value/nil-middleware", func(b *testing.B) { benchValue(b, endpoint.Wrap(benchInfo, sumValue, nil, nil)) })
}

// BenchmarkWrap1 calls an endpoint wrapped with one pass-through middleware.
func BenchmarkWrap1(b *testing.B) {
	b.Run("value", func(b *testing.B) { benchValue(b, endpoint.Wrap(benchInfo, sumValue, passN(1)...)) })
	b.Run("pointer", func(b *testing.B) { benchPointer(b, endpoint.Wrap(benchInfo, sumPointer, passN(1)...)) })
}

// BenchmarkWrap5 calls an endpoint wrapped with five pass-through middleware.
func BenchmarkWrap5(b *testing.B) {
	b.Run("value", func(b *testing.B) { benchValue(b, endpoint.Wrap(benchInfo, sumValue, passN(5)...)) })
	b.Run("pointer", func(b *testing.B) { benchPointer(b, endpoint.Wrap(benchInfo, sumPointer, passN(5)...)) })
}
