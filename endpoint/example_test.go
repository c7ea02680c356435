package endpoint_test

import (
	"context"
	"fmt"

	"github.com/svckit/svckit/endpoint"
)

type SumRequest struct{ A, B int }

type SumResponse struct{ V int }

// logging is a middleware that prints each call and its result. It reads the Info once,
// when the endpoint is wrapped.
func logging(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
	name := info.FullName()
	return func(ctx context.Context, req any) (any, error) {
		fmt.Printf("%s(%+v)\n", name, req)
		resp, err := next(ctx, req)
		fmt.Printf("%s -> %+v, %v\n", name, resp, err)
		return resp, err
	}
}

func ExampleWrap() {
	sum := func(_ context.Context, req SumRequest) (SumResponse, error) {
		return SumResponse{V: req.A + req.B}, nil
	}
	info := endpoint.Info{Service: "addsvc", Method: "Sum", Transport: "inproc"}

	// The wrapped endpoint is typed again: no type assertions for the caller.
	e := endpoint.Wrap(info, sum, logging)
	resp, err := e(context.Background(), SumRequest{A: 2, B: 3})
	fmt.Println(resp.V, err)
	// Output:
	// addsvc.Sum({A:2 B:3})
	// addsvc.Sum -> {V:5}, <nil>
	// 5 <nil>
}

func ExampleChain() {
	named := func(name string) endpoint.Middleware {
		return func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
			return func(ctx context.Context, req any) (any, error) {
				fmt.Println("enter", name)
				defer fmt.Println("leave", name)
				return next(ctx, req)
			}
		}
	}
	// The first middleware is the outermost; nil entries are skipped, which makes optional
	// middleware easy to leave out.
	var metrics endpoint.Middleware // not configured
	mw := endpoint.Chain(named("recover"), metrics, named("timeout"))

	h := mw(endpoint.Info{Service: "addsvc", Method: "Sum"}, func(context.Context, any) (any, error) {
		fmt.Println("endpoint")
		return nil, nil
	})
	_, _ = h(context.Background(), nil)
	// Output:
	// enter recover
	// enter timeout
	// endpoint
	// leave timeout
	// leave recover
}
