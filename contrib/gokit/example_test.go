package gokit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	kitendpoint "github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/svckit/svckit/contrib/gokit"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// The go-kit service being migrated: a string service with two methods.
type uppercaseRequest struct {
	S string `json:"s"`
}

type uppercaseResponse struct {
	V string `json:"v"`
}

type countRequest struct {
	S string `json:"s"`
}

type countResponse struct {
	V int `json:"v"`
}

// The go-kit service's existing middleware, kept during the migration.
func kitLogging(method string) kitendpoint.Middleware {
	return func(next kitendpoint.Endpoint) kitendpoint.Endpoint {
		return func(ctx context.Context, req interface{}) (interface{}, error) {
			resp, err := next(ctx, req)
			fmt.Printf("log: method=%s err=%v\n", method, err)
			return resp, err
		}
	}
}

// Example_migrateOneEndpoint moves the Uppercase method of a go-kit service to svckit while
// Count stays in go-kit. Both are still served by the same go-kit HTTP router and keep the
// go-kit logging middleware.
func Example_migrateOneEndpoint() {
	// Count: untouched go-kit code.
	count := func(_ context.Context, request interface{}) (interface{}, error) {
		req := request.(countRequest)
		return countResponse{V: len(req.S)}, nil
	}

	// Uppercase: now a typed svckit endpoint. No type assertions, errors are svcerr kinds.
	uppercase := func(_ context.Context, req uppercaseRequest) (uppercaseResponse, error) {
		if req.S == "" {
			return uppercaseResponse{}, svcerr.Invalid("s", "is required")
		}
		return uppercaseResponse{V: strings.ToUpper(req.S)}, nil
	}
	// Its go-kit middleware is kept, applied the svckit way; svckit middleware
	// (metrics, tracing, access log) would join it in the same list.
	info := endpoint.Info{Service: "stringsvc", Method: "Uppercase", Transport: "http"}
	wrapped := endpoint.Wrap(info, uppercase, gokit.Middleware(kitLogging("uppercase")))

	// The go-kit transport stays; ToKit plugs the svckit endpoint into it.
	mux := http.NewServeMux()
	mux.Handle("POST /uppercase", kithttp.NewServer(gokit.ToKit(wrapped),
		decodeJSON[uppercaseRequest], kithttp.EncodeJSONResponse))
	mux.Handle("POST /count", kithttp.NewServer(kitLogging("count")(count),
		decodeJSON[countRequest], kithttp.EncodeJSONResponse))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, call := range []struct{ path, body string }{
		{"/uppercase", `{"s":"hello"}`},
		{"/uppercase", `{"s":""}`},
		{"/count", `{"s":"hello"}`},
	} {
		resp, err := http.Post(srv.URL+call.path, "application/json", strings.NewReader(call.body))
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s\n", call.path, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// log: method=uppercase err=<nil>
	// /uppercase 200 {"v":"HELLO"}
	// log: method=uppercase err=invalid_argument: s: is required
	// /uppercase 400 {"type":"about:blank","title":"Bad Request","status":400,"detail":"s: is required","kind":"invalid_argument","errors":[{"field":"s","description":"is required"}]}
	// log: method=count err=<nil>
	// /count 200 {"v":5}
}

// decodeJSON is a go-kit DecodeRequestFunc for a JSON body of type T.
func decodeJSON[T any](_ context.Context, r *http.Request) (interface{}, error) {
	var req T
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return nil, gokit.ErrorToKit(svcerr.Wrap(svcerr.InvalidArgument, "malformed JSON body", err))
	}
	return req, nil
}

// ExampleFromKit calls an existing go-kit endpoint as a typed svckit endpoint.
func ExampleFromKit() {
	kitCount := func(_ context.Context, request interface{}) (interface{}, error) {
		return countResponse{V: len(request.(countRequest).S)}, nil
	}
	count := gokit.FromKit[countRequest, countResponse](kitCount)
	resp, err := count(context.Background(), countRequest{S: "gopher"})
	fmt.Println(resp.V, err)

	// A go-kit endpoint that answers with the wrong type is an error, not a panic.
	wrong := gokit.FromKit[countRequest, uppercaseResponse](kitCount)
	_, err = wrong(context.Background(), countRequest{S: "gopher"})
	fmt.Println(err)
	// Output:
	// 6 <nil>
	// internal: gokit: go-kit endpoint returned a response of type gokit_test.countResponse, want gokit_test.uppercaseResponse
}

// ExampleKitMiddleware puts svckit middleware on an endpoint that still lives in a go-kit
// service: it sees the go-kit error as a svcerr kind, and the go-kit service gets its own
// error back.
func ExampleKitMiddleware() {
	errNotFound := notFoundError{id: "42"}
	kitGet := func(context.Context, interface{}) (interface{}, error) { return nil, errNotFound }

	byKind := func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			fmt.Printf("metrics: %s kind=%s\n", info.FullName(), svcerr.KindOf(err))
			return resp, err
		}
	}
	info := endpoint.Info{Service: "users", Method: "Get", Transport: "http"}
	get := gokit.KitMiddleware(byKind, info)(kitGet)

	_, err := get(context.Background(), nil)
	fmt.Println(errors.Is(err, errNotFound), err)
	// Output:
	// metrics: users.Get kind=not_found
	// true user 42 not found
}

// notFoundError is a go-kit style error: it carries its HTTP status code.
type notFoundError struct{ id string }

func (e notFoundError) Error() string   { return "user " + e.id + " not found" }
func (e notFoundError) StatusCode() int { return http.StatusNotFound }

// ExampleErrorFromKit classifies go-kit errors by the status code they carry.
func ExampleErrorFromKit() {
	err := gokit.ErrorFromKit(notFoundError{id: "7"})
	e := svcerr.From(err)
	fmt.Printf("kind=%s message=%q status=%d\n", e.Kind, e.Message, e.Kind.HTTPStatus())
	fmt.Println(errors.As(err, new(notFoundError)))
	// Output:
	// kind=not_found message="user 7 not found" status=404
	// true
}
