// Package pbdir names two directories for its protobuf package.
package pbdir

import "context"

// A puts the protobuf package in ../pb.
//
//svckit:gen
//svckit:pb ../pb
type A interface {
	Do(ctx context.Context) error
}

// B names a second directory.
//
//svckit:gen
//svckit:pb other
type B interface {
	Do(ctx context.Context) error
}
