// Package wrapclash has interfaces whose generated types would have one name.
package wrapclash

import (
	"context"
	"iter"
)

// Service has method DG: its response is DGResponse.
//
//svckit:gen
type Service interface {
	DG(ctx context.Context) (string, error)
}

// GRequest is the request of D.G.
type GRequest struct {
	N int `json:"n"`
}

// D has method EF, whose request is DEFRequest, and G, whose stream item would be
// DGResponse.
//
//svckit:gen
type D interface {
	EF(ctx context.Context, n int) error
	G(ctx context.Context, req GRequest) (iter.Seq2[int, error], error)
}

// DE has method F: its request would be DEFRequest too.
//
//svckit:gen
type DE interface {
	F(ctx context.Context, s string) error
}
