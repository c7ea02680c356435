// Package moretypes has more types the generator cannot carry.
package moretypes

import (
	"context"

	"github.com/svckit/svckit/internal/gen/testdata/errors/moretypes/hidden"
)

// Text marshals itself to text.
type Text struct{ X int }

// MarshalText makes the JSON form unknown to the generator.
func (Text) MarshalText() ([]byte, error) { return nil, nil }

// IntPtr is a named pointer type.
type IntPtr *int

// Service has one problem per method.
type Service interface {
	Text(ctx context.Context, t Text) error
	NamedPtr(ctx context.Context, p IntPtr) error
	MapOfPtrInt(ctx context.Context, m map[string]*int) error
	Hidden(ctx context.Context, s hidden.Secret) error
	HiddenField(ctx context.Context, w hidden.Wrapper) error
	//svckit:http GET /twice/{id}/{ID}
	BoundTwice(ctx context.Context, id string) error
}
