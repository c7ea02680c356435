// Package types has field types the generator cannot carry.
package types

import (
	"context"
	"encoding/json"
	"unsafe"
)

// Custom marshals itself.
type Custom struct{ X int }

// MarshalJSON makes the JSON form unknown to the generator.
func (Custom) MarshalJSON() ([]byte, error) { return nil, nil }

// Holder has bad fields.
type Holder struct {
	F        func() `json:"f"`
	Embedded        // a pointer is embedded below
	*Inner          // embedded pointer
	Num      int    `json:"num,string"`
	A        string `json:"same"`
	B        string `json:"same"`
}

// Embedded is embedded by value: fine.
type Embedded struct{ OK string }

// Inner is embedded by pointer.
type Inner struct{ Y int }

// Service has one problem per method.
type Service interface {
	Func(ctx context.Context, f func()) error
	Iface(ctx context.Context, v any) error
	IntKeys(ctx context.Context, m map[int]string) error
	Array(ctx context.Context, a [4]int) error
	Anonymous(ctx context.Context, s struct{ X int }) error
	Complex(ctx context.Context, c complex128) error
	Uintptr(ctx context.Context, p uintptr) error
	Unsafe(ctx context.Context, p unsafe.Pointer) error
	Nested(ctx context.Context, s [][]string) error
	SliceOfMaps(ctx context.Context, s []map[string]int) error
	MapOfSlices(ctx context.Context, m map[string][]int) error
	PtrSlice(ctx context.Context, p *[]int) error
	PtrPtr(ctx context.Context, p **int) error
	SliceOfPtrInt(ctx context.Context, s []*int) error
	Marshaler(ctx context.Context, c Custom) error
	Raw(ctx context.Context, r json.RawMessage) error
	Chan(ctx context.Context, c chan int) error
	Fields(ctx context.Context, h Holder) error
	Err(ctx context.Context, e error) error
}
