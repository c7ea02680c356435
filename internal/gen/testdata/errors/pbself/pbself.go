// Package pbself puts its protobuf package in its own directory.
package pbself

import "context"

// Service is served.
//
//svckit:pb .
type Service interface {
	Do(ctx context.Context) error
}
