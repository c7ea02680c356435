// Package multi has several interfaces: the ones marked //svckit:gen are served, in one
// protobuf package set by //svckit:grpc.
package multi

import "context"

// User is a user.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Users manages users.
//
//svckit:gen
//svckit:grpc multi.v1.Users
type Users interface {
	// Get returns a user.
	Get(ctx context.Context, id string) (User, error)
	// Create creates a user.
	Create(ctx context.Context, name string) (User, error)
}

// Groups manages groups.
//
//svckit:gen
//svckit:grpc multi.v1.Groups
type Groups interface {
	// Get returns a group's members.
	Get(ctx context.Context, id string) (members []User, err error)
}

// Admin is exported but not marked, so it is not served.
type Admin interface {
	Reset(ctx context.Context) error
}
