// Package routes exercises //svckit:http annotations: path wildcards and query
// parameters bound to fields, every method, and methods not served over HTTP.
package routes

import (
	"context"
	"time"
)

// Color is a string enum.
type Color string

// The colors.
const (
	Red  Color = "red"
	Blue Color = "blue"
)

// ThingRequest is a request struct declared here, so it can be bound from the URL.
type ThingRequest struct {
	ID      int64 `json:"id"`
	Verbose bool  `json:"verbose"`
}

// Thing is a thing.
type Thing struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Profiles manages profiles.
type Profiles interface {
	// GetProfile returns a profile's name.
	//
	//svckit:http GET /profiles/{id}
	GetProfile(ctx context.Context, id string) (name string, err error)
	// ListProfiles lists profiles, filtered by the query.
	//
	//svckit:http GET /profiles
	ListProfiles(ctx context.Context, limit int, tags []string, active *bool, since time.Time, color Color, wait time.Duration) (names []string, err error)
	// DeleteProfile deletes a profile.
	//svckit:http DELETE /profiles/{id}
	DeleteProfile(ctx context.Context, id string, hard bool) error
	// Rename renames a profile.
	//svckit:http PUT /profiles/{id}/name
	Rename(ctx context.Context, id string, name string) error
	// AddMember adds a member to an organisation: two wildcards and a body.
	//svckit:http POST /orgs/{org}/members/{n}
	AddMember(ctx context.Context, org string, n uint32, user string) error
	// File returns a file by its path.
	//svckit:http GET /files/{path...}
	File(ctx context.Context, path string) ([]byte, error)
	// Internal is served over gRPC only.
	//svckit:http -
	Internal(ctx context.Context) error
	// Touch is idempotent, served on the default route.
	//svckit:idempotent
	Touch(ctx context.Context, id string) error
	// Thing binds a request struct of this package from the URL.
	//svckit:http GET /things/{id}
	Thing(ctx context.Context, req ThingRequest) (Thing, error)
}
