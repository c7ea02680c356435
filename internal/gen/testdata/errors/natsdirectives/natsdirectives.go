// Package natsdirectives has bad //svckit:nats directives.
package natsdirectives

import (
	"context"
	"iter"
)

// Service has bad NATS subjects.
//
//svckit:gen
type Service interface {
	// Empty has a directive without a subject.
	//svckit:nats
	Empty(ctx context.Context) error
	// Wild has a wildcard.
	//svckit:nats orders.*.place
	Wild(ctx context.Context) error
	// Spaced has a space in its subject.
	//svckit:nats orders place
	Spaced(ctx context.Context) error
	// Dotted has an empty token.
	//svckit:nats orders..place
	Dotted(ctx context.Context) error
	// Place is on orders.place.
	//svckit:nats orders.place
	Place(ctx context.Context) error
	// Again is on orders.place too.
	//svckit:nats orders.place
	Again(ctx context.Context) error
	// Plain is on its default subject.
	Plain(ctx context.Context) error
	// Default takes the default subject of Plain.
	//svckit:nats svc.natsdirectives.Service.Plain
	Default(ctx context.Context) error
	// Stream streams, so it has no subject.
	//svckit:nats orders.stream
	Stream(ctx context.Context) (iter.Seq2[int, error], error)
	// Off is fine: not on NATS, so it takes no subject.
	//svckit:nats -
	Off(ctx context.Context) error
}
