package addsvc

import (
	shttp "github.com/svckit/svckit/transport/http"
)

// RegisterHTTP serves the endpoints over HTTP:
//
//	POST /sum     {"a":1,"b":2}     → {"v":3}
//	POST /concat  {"a":"x","b":"y"} → {"v":"xy"}
func RegisterHTTP(s *shttp.Server, e Endpoints) {
	shttp.Handle(s, "POST /sum", "Sum", e.Sum)
	shttp.Handle(s, "POST /concat", "Concat", e.Concat)
}

// NewHTTPClient returns Endpoints that call an addsvc at baseURL over HTTP. Range is not
// served over HTTP; its endpoint is nil.
func NewHTTPClient(baseURL string, opts ...shttp.ClientOption) (Endpoints, error) {
	c, err := shttp.NewClient(baseURL, "addsvc", opts...)
	if err != nil {
		return Endpoints{}, err
	}
	return Endpoints{
		Sum:    shttp.Call[SumRequest, SumResponse](c, "POST /sum", "Sum"),
		Concat: shttp.Call[ConcatRequest, ConcatResponse](c, "POST /concat", "Concat"),
	}, nil
}
