// Package routes has //svckit:http annotations that cannot work.
package routes

import (
	"context"
	"iter"

	"github.com/svckit/svckit/internal/gen/testdata/shared"
)

// Service has one problem per method.
type Service interface {
	//svckit:http FETCH /x
	BadMethod(ctx context.Context) error
	//svckit:http GET x
	BadPath(ctx context.Context) error
	//svckit:http GET /users/{name}
	NoField(ctx context.Context, id string) error
	//svckit:http GET /users/{tags}
	NotScalar(ctx context.Context, tags []string) error
	//svckit:http GET /files/{n...}
	RestNotString(ctx context.Context, n int) error
	//svckit:http GET /search
	StructInQuery(ctx context.Context, where shared.Address, limit int) error
	//svckit:http GET /stream
	Stream(ctx context.Context) (iter.Seq2[int, error], error)
	//svckit:http POST /a
	First(ctx context.Context) error
	//svckit:http POST /a
	Second(ctx context.Context) error
	//svckit:http GET /points/{lat}
	Foreign(ctx context.Context, p shared.Point) error
	//svckit:http GET /{
	Unclosed(ctx context.Context) error
	//svckit:retry
	UnknownDirective(ctx context.Context) error
}
