// Package clash declares a name the generator needs.
package clash

import "context"

// Service is served.
type Service interface {
	// Get gets.
	Get(ctx context.Context, id string) (string, error)
}

// Endpoints is declared by hand, so the generated Endpoints would clash.
type Endpoints struct{}

// GetRequest is declared by hand too.
type GetRequest struct{}
