// Package helperclash declares an unexported name that the generated code declares too.
package helperclash

import "context"

// Service is served.
type Service interface {
	// Get gets.
	Get(ctx context.Context, id string) (string, error)
}

// lift is a helper name the generator uses too.
func lift() {}

// toPBGetRequest is a conversion name the generator uses too.
var toPBGetRequest = 1
