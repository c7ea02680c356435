// Package addsvc is go-kit's canonical example service written on svckit: a plain Go
// interface and its implementation (this file). Everything else — typed endpoints, the
// HTTP and gRPC transports and clients, the .proto and the OpenAPI document — is generated
// from the interface by svckit gen (service_gen.go, pbconv_gen.go, ../pb). The service
// itself imports no transport.
package addsvc

//go:generate go run github.com/svckit/svckit/cmd/svckit gen

import (
	"context"
	"iter"
	"math"

	"github.com/svckit/svckit/svcerr"
)

// Service sums integers and concatenates strings.
//
//svckit:grpc addsvc.Add
//svckit:pb ../pb
type Service interface {
	// Sum returns a + b.
	Sum(ctx context.Context, a, b int64) (v int64, err error)
	// Concat returns a + b.
	Concat(ctx context.Context, a, b string) (v string, err error)
	// Range yields the integers from from up to, but not including, to.
	Range(ctx context.Context, from, to int64) (iter.Seq2[int64, error], error)
}

// The business errors of the service, as in go-kit's addsvc.
var (
	// ErrTwoZeroes is returned by Sum for 0 + 0, an arbitrary business rule.
	ErrTwoZeroes = svcerr.New(svcerr.InvalidArgument, "can't sum two zeroes")
	// ErrIntOverflow is returned by Sum when the sum does not fit an int64.
	ErrIntOverflow = svcerr.New(svcerr.OutOfRange, "integer overflow")
	// ErrMaxSizeExceeded is returned by Concat when the result is longer than MaxConcatLen.
	ErrMaxSizeExceeded = svcerr.New(svcerr.InvalidArgument, "result exceeds maximum size")
	// ErrRangeTooLong is returned by Range for more than MaxRange numbers.
	ErrRangeTooLong = svcerr.New(svcerr.InvalidArgument, "range is longer than 100000 numbers")
)

// MaxConcatLen is the longest string Concat returns.
const MaxConcatLen = 1024

// MaxRange is the most numbers one Range call yields.
const MaxRange = 100_000

// New returns the basic implementation of Service.
func New() Service { return basic{} }

type basic struct{}

func (basic) Sum(_ context.Context, a, b int64) (int64, error) {
	if a == 0 && b == 0 {
		return 0, ErrTwoZeroes
	}
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, ErrIntOverflow
	}
	return a + b, nil
}

func (basic) Concat(_ context.Context, a, b string) (string, error) {
	if len(a)+len(b) > MaxConcatLen {
		return "", ErrMaxSizeExceeded
	}
	return a + b, nil
}

func (basic) Range(ctx context.Context, from, to int64) (iter.Seq2[int64, error], error) {
	if to < from {
		return nil, svcerr.Invalid("to", "must not be less than from")
	}
	if to-from > MaxRange || to-from < 0 {
		return nil, ErrRangeTooLong
	}
	return func(yield func(int64, error) bool) {
		for i := from; i < to; i++ {
			if err := ctx.Err(); err != nil {
				yield(0, err)
				return
			}
			if !yield(i, nil) {
				return
			}
		}
	}, nil
}
