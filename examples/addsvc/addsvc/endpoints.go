package addsvc

import (
	"context"
	"iter"

	"github.com/svckit/svckit/endpoint"
)

// SumRequest is the request of Sum.
type SumRequest struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

// SumResponse is the response of Sum.
type SumResponse struct {
	V int64 `json:"v"`
}

// ConcatRequest is the request of Concat.
type ConcatRequest struct {
	A string `json:"a"`
	B string `json:"b"`
}

// ConcatResponse is the response of Concat.
type ConcatResponse struct {
	V string `json:"v"`
}

// RangeRequest is the request of Range.
type RangeRequest struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Endpoints holds one typed endpoint per service method. Transports serve them; clients
// build them; middleware wraps them.
type Endpoints struct {
	Sum    endpoint.Endpoint[SumRequest, SumResponse]
	Concat endpoint.Endpoint[ConcatRequest, ConcatResponse]
	Range  endpoint.Endpoint[RangeRequest, iter.Seq2[int64, error]]
}

// MakeEndpoints adapts a Service to Endpoints.
func MakeEndpoints(s Service) Endpoints {
	return Endpoints{
		Sum: func(ctx context.Context, req SumRequest) (SumResponse, error) {
			v, err := s.Sum(ctx, req.A, req.B)
			return SumResponse{V: v}, err
		},
		Concat: func(ctx context.Context, req ConcatRequest) (ConcatResponse, error) {
			v, err := s.Concat(ctx, req.A, req.B)
			return ConcatResponse{V: v}, err
		},
		Range: func(ctx context.Context, req RangeRequest) (iter.Seq2[int64, error], error) {
			return s.Range(ctx, req.From, req.To)
		},
	}
}
