// Package aliases exercises type aliases and instances of generic types used as field
// types, parameters and results.
package aliases

import (
	"context"

	"github.com/svckit/svckit/internal/gen/testdata/shared"
)

// Addr is an alias of a struct of another package.
type Addr = shared.Address

// Lvl is an alias of a named integer enum of another package.
type Lvl = shared.Level

// Pair is a generic struct of this package.
type Pair[K comparable, V any] struct {
	Key   K `json:"key"`
	Value V `json:"value"`
}

// Book has fields of alias types and of instances of generic types.
type Book struct {
	Title    string                                `json:"title"`
	Home     Addr                                  `json:"home"`
	Level    Lvl                                   `json:"level"`
	Chapters shared.Page[string]                   `json:"chapters"`
	Homes    *shared.Page[Addr]                    `json:"homes,omitempty"`
	Pairs    []Pair[string, int64]                 `json:"pairs"`
	Points   map[string]Pair[string, shared.Point] `json:"points"`
}

// Shelf is an alias of an instance of a generic type.
type Shelf = shared.Page[Book]

// Service finds books.
type Service interface {
	// Find returns the books at an address: alias parameters, a slice result.
	Find(ctx context.Context, home Addr, level Lvl) ([]Book, error)
	// Shelve stores a book under a key: an instance of a generic type is the request and
	// another the response.
	Shelve(ctx context.Context, p Pair[string, Book]) (shared.Page[Book], error)
	// Shelf returns a shelf: an alias of an instance of a generic type is the response.
	Shelf(ctx context.Context, name string) (*Shelf, error)
}
