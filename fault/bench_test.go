package fault_test

import (
	"context"
	"testing"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/fault"
)

// BenchmarkMiddleware measures what the middleware adds to a call that gets no fault,
// beside the same endpoint without it:
//
//	go test -run - -bench Middleware -benchtime 200000x -count 5 -cpu 1 ./fault
func BenchmarkMiddleware(b *testing.B) {
	info := endpoint.Info{Service: "catalog", Method: "Reserve"}
	e := func(_ context.Context, r *req) (*resp, error) { return &resp{V: r.A}, nil }
	other := fault.New()
	if err := other.Set(fault.Rule{Method: "payments.*", AbortPercent: 100}); err != nil {
		b.Fatal(err)
	}
	picked := fault.New(fault.WithRand(func() float64 { return 0.99 }))
	if err := picked.Set(fault.Rule{Method: "catalog.Reserve", AbortPercent: 50}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		mws  []endpoint.Middleware
	}{
		// A middleware that does nothing, so that both sides pay for Wrap's boxing alike.
		{"without", []endpoint.Middleware{endpoint.Nop}},
		{"no-rules", []endpoint.Middleware{fault.New().Middleware()}},
		{"header-on-no-rules", []endpoint.Middleware{fault.New(fault.WithHeader("t")).Middleware()}},
		{"rule-other-method", []endpoint.Middleware{other.Middleware()}},
		{"rule-this-method-not-picked", []endpoint.Middleware{picked.Middleware()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := endpoint.Wrap(info, e, append(bc.mws, passthrough)...)
			ctx := context.Background()
			r := &req{A: 1}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// passthrough keeps Wrap from returning the endpoint itself when the middleware is Nop.
func passthrough(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, r any) (any, error) { return next(ctx, r) }
}
