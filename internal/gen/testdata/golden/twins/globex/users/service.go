// Package users is Globex's users service. Its twin, package users of the other company,
// has the same Go package name, file name and messages: both are linked into one test
// binary (TestTwinsLinkTogether), which needs their registered .proto paths to differ.
package users

import "context"

// Users finds Globex's users.
//
//svckit:grpc globex.users.v1.UsersService
type Users interface {
	// Get returns the user id.
	//svckit:http GET /users/{id}
	Get(ctx context.Context, id string) (User, error)
}

// User is one of Globex's users.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}
