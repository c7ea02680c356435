// Package grpcnames has interfaces whose gRPC names collide.
package grpcnames

import "context"

// A is served as grpcnames.v1.Same.
//
//svckit:gen
//svckit:grpc grpcnames.v1.Same
type A interface {
	Do(ctx context.Context) error
}

// B is served as grpcnames.v1.Same too.
//
//svckit:gen
//svckit:grpc grpcnames.v1.Same
type B interface {
	Do(ctx context.Context) error
}

// C is in another protobuf package.
//
//svckit:gen
//svckit:grpc other.v1.C
type C interface {
	Do(ctx context.Context) error
}
