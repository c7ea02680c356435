// Package directives has bad interface directives.
package directives

import "context"

// Service has bad directives.
//
//svckit:gen
//svckit:grpc not a name
//svckit:pb /abs
//svckit:frobnicate
//svckit:auth token
type Service interface {
	// Generic interfaces cannot be served either, but this one is not generic.
	Do(ctx context.Context) error
	// Undo has a bad auth directive.
	//svckit:auth public admin
	Undo(ctx context.Context) error
	// Redo has a role with a quote.
	//svckit:auth bearer "admin"
	Redo(ctx context.Context) error
}

// Generic is marked but generic.
//
//svckit:gen
type Generic[T any] interface {
	Do(ctx context.Context, v T) error
}

// Empty is marked but has no methods.
//
//svckit:gen
type Empty interface{}
