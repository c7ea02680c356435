// Package pbname puts its protobuf package in a directory that is no Go package name.
package pbname

import "context"

// Service is served.
//
//svckit:pb ../p-b
type Service interface {
	Do(ctx context.Context) error
}
