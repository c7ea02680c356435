// Package typeflag has several unmarked interfaces; -type B picks one.
package typeflag

import "context"

// A is not picked.
type A interface {
	Do(ctx context.Context) error
}

// B is picked with -type B.
type B interface {
	// Do does it.
	Do(ctx context.Context, n int) (int, error)
}
