package meta_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/svckit/svckit/endpoint"
	shttp "github.com/svckit/svckit/transport/http"
	"github.com/svckit/svckit/transport/meta"
)

func Example() {
	// Middleware written once reads the incoming request, whatever the transport.
	who := func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			fmt.Printf("%s from %s, tenant %q, token %q\n",
				info.FullName(), meta.Peer(ctx), meta.Header(ctx, "X-Tenant"), meta.BearerToken(ctx))
			return next(ctx, req)
		}
	}
	s := shttp.NewServer("sum", shttp.WithMiddleware(who))
	shttp.Handle(s, "PUT /sum", "Sum", func(_ context.Context, r req) (resp, error) { return resp{V: r.A + r.B}, nil })
	srv := httptest.NewServer(s)
	defer srv.Close()

	// A client sends headers set in its context.
	c, _ := shttp.NewClient(srv.URL, "sum")
	sum := shttp.Call[req, resp](c, "PUT /sum", "Sum")
	ctx := meta.WithOutgoingHeader(context.Background(), "X-Tenant", "acme")
	ctx = meta.WithOutgoingHeader(ctx, "Authorization", "Bearer t0k3n")
	r, err := sum(ctx, req{A: 1, B: 2})
	fmt.Println(r.V, err)
	// Output:
	// sum.Sum from 127.0.0.1, tenant "acme", token "t0k3n"
	// 3 <nil>
}
