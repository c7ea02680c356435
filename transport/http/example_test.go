package http_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

type greetRequest struct {
	Name string `json:"name"`
}

type greetResponse struct {
	Greeting string `json:"greeting"`
}

// greet is an endpoint: a typed function, unaware of HTTP.
func greet(_ context.Context, r greetRequest) (greetResponse, error) {
	if r.Name == "" {
		return greetResponse{}, svcerr.New(svcerr.InvalidArgument, "name is empty")
	}
	return greetResponse{Greeting: "hello, " + r.Name}, nil
}

// A server serves endpoints on Go's pattern routes with JSON bodies; a client calls them
// as endpoints again, and errors keep their kind across the wire.
func Example() {
	srv := shttp.NewServer("greeter")
	shttp.Handle(srv, "POST /greet", "Greet", greet)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	// Any HTTP client can call it.
	resp, err := http.Post(ts.URL+"/greet", "application/json", strings.NewReader(`{"name":"ada"}`))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))

	// A svckit client turns the route back into a typed endpoint.
	c, err := shttp.NewClient(ts.URL, "greeter")
	if err != nil {
		panic(err)
	}
	call := shttp.Call[greetRequest, greetResponse](c, "POST /greet", "Greet")
	out, err := call(context.Background(), greetRequest{Name: "grace"})
	fmt.Println(out.Greeting, err)
	_, err = call(context.Background(), greetRequest{})
	var se *svcerr.Error
	fmt.Println(errors.As(err, &se), svcerr.KindOf(err))

	// Bad input is a problem+json answer naming what is wrong.
	resp, _ = http.Post(ts.URL+"/greet", "application/json", strings.NewReader(`{"name":`))
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	resp.Body.Close()
	// Output:
	// 200 {"greeting":"hello, ada"}
	// hello, grace <nil>
	// true invalid_argument
	// 400 application/problem+json
}
