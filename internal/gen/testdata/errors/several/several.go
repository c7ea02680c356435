// Package several has several unmarked exported interfaces.
package several

import "context"

// A is one.
type A interface {
	Do(ctx context.Context) error
}

// B is another.
type B interface {
	Do(ctx context.Context) error
}
