// Package basic exercises parameters and results of basic types: several or none, named
// or unnamed. Its interface is the only exported one, so it needs no marker.
package basic

import (
	"context"
	"time"
)

// Service echoes values of every basic type.
type Service interface {
	// Echo returns some of its parameters.
	Echo(ctx context.Context, b bool, s string, i int, i8 int8, i16 int16, i32 int32, i64 int64,
		u uint, u8 uint8, u16 uint16, u32 uint32, u64 uint64, f32 float32, f64 float64) (bool, string, int64, error)
	// Blob hashes data.
	Blob(ctx context.Context, data []byte) (sum []byte, err error)
	// When adds after to at.
	When(ctx context.Context, at time.Time, after time.Duration) (time.Time, error)
	// Ping takes and returns nothing.
	Ping(ctx context.Context) error
	// Unnamed has unnamed parameters and one unnamed result.
	Unnamed(context.Context, string, int) (int, error)
}

// helper is unexported and not served.
type helper interface {
	help()
}
