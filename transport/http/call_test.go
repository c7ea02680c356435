package http_test

import (
	"testing"

	"github.com/svckit/svckit/endpoint"
	shttp "github.com/svckit/svckit/transport/http"
)

func TestCallIdempotent(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		opts    []shttp.RouteOption
		want    bool
	}{
		{"POST /x", nil, false},
		{"POST /x", []shttp.RouteOption{shttp.Idempotent()}, true},
		{"PUT /x", nil, true},
		{"GET /x", nil, true},
	} {
		var got endpoint.Info
		c, err := shttp.NewClient("http://127.0.0.1:1", "s", shttp.WithClientMiddleware(
			func(info endpoint.Info, next endpoint.Handler) endpoint.Handler { got = info; return next }))
		if err != nil {
			t.Fatal(err)
		}
		shttp.Call[struct{}, struct{}](c, tc.pattern, "X", tc.opts...)
		if got.Idempotent != tc.want || !got.Client {
			t.Errorf("%s %d options: Idempotent %v, want %v", tc.pattern, len(tc.opts), got.Idempotent, tc.want)
		}
	}
}
