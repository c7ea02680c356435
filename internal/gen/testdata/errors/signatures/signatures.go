// Package signatures has method signatures the generator cannot serve.
package signatures

import (
	"context"
	"iter"
)

// Service has one problem per method.
type Service interface {
	// NoContext lacks the context.
	NoContext(n int) error
	// NoError does not return an error last.
	NoError(ctx context.Context) int
	// Variadic takes variadic parameters.
	Variadic(ctx context.Context, n ...int) error
	// Chan streams with a channel.
	Chan(ctx context.Context) (<-chan int, error)
	// Seq streams without errors.
	Seq(ctx context.Context) (iter.Seq[int], error)
	// SeqNoErr streams a Seq2 whose second type is not error.
	SeqNoErr(ctx context.Context) (iter.Seq2[int, string], error)
	// StreamAndMore returns a stream and another value.
	StreamAndMore(ctx context.Context) (iter.Seq2[int, error], int, error)
	// Dup has two parameters that become one field.
	Dup(ctx context.Context, a int, A string) error
	// Fine is fine, and is not reported.
	Fine(ctx context.Context, a int) (int, error)
	unexported(ctx context.Context) error
}
