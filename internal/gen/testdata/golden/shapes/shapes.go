// Package shapes exercises struct requests and responses, nested structs from another
// package, pointers, slices, maps, enums, generics, aliases and embedded structs.
package shapes

import (
	"context"
	"time"

	"github.com/svckit/svckit/internal/gen/testdata/shared"
)

// Color is a string enum.
type Color string

// The colors.
const (
	Red   Color = "red"
	Green Color = "green"
)

// Base is embedded in Profile; its fields are promoted, in JSON as in protobuf.
type Base struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

// Profile is a person.
type Profile struct {
	Base
	// Name is the display name.
	Name     string                   `json:"name"`
	Nick     *string                  `json:"nick,omitempty"` // optional
	Age      *int                     `json:"age"`
	Tags     []string                 `json:"tags"`
	Labels   map[string]string        `json:"labels"`
	Scores   map[Color]int64          `json:"scores"`
	Color    Color                    `json:"color"`
	Level    shared.Level             `json:"level"`
	Home     shared.Address           `json:"home"`
	Work     *shared.Address          `json:"work,omitempty"`
	Others   []shared.Address         `json:"others"`
	Friends  []*Profile               `json:"friends"`
	ByName   map[string]*shared.Point `json:"byName"`
	Avatar   []byte                   `json:"avatar"`
	Seen     shared.Stamp             `json:"seen"`
	Until    *time.Time               `json:"until"`
	TTL      time.Duration            `json:"ttl"`
	Timeouts []time.Duration          `json:"timeouts"`
	Colors   []Color                  `json:"colors"`
	Ratio    *float64                 `json:"ratio"`
	NoTag    string
	secret   string
	Skipped  string `json:"-"`
}

// GetRequest asks for one profile.
type GetRequest struct {
	ID string `json:"id"`
}

// Service stores profiles.
//
//svckit:gen
type Service interface {
	// Get returns a profile: one request struct, a pointer response.
	Get(ctx context.Context, req GetRequest) (*Profile, error)
	// Put stores a profile: a pointer request struct, a value response.
	Put(ctx context.Context, p *Profile) (Profile, error)
	// List returns a page of profiles: a generic response struct from another package.
	List(ctx context.Context, limit int, after string) (shared.Page[Profile], error)
	// Colors counts colors: slices and maps of enums as parameters and results.
	Colors(ctx context.Context, c []Color, m map[string]shared.Level) (map[Color]int64, error)
	// Where returns the address: a struct from another package.
	Where(ctx context.Context, id string) (shared.Address, error)
}

// Other is exported but not marked: not served.
type Other interface {
	Do(ctx context.Context) error
}

var _ = Profile{}.secret
