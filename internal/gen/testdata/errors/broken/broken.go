// Package broken uses a type that does not exist.
package broken

import "context"

// Service refers to an undefined type.
type Service interface {
	Get(ctx context.Context, id Missing) error
}
