package http_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/svckit/svckit/endpoint"
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

// WithCORS lets scripts from the listed origins call the server: a browser's preflight
// from an allowed origin gets the path's methods, one from another origin 403.
func ExampleWithCORS() {
	srv := shttp.NewServer("greeter", shttp.WithCORS(shttp.CORS{AllowedOrigins: []string{"https://app.example.com"}}))
	shttp.Handle(srv, "POST /greet", "Greet", greet)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	for _, origin := range []string{"https://app.example.com", "https://elsewhere.example"} {
		req, _ := http.NewRequest(http.MethodOptions, ts.URL+"/greet", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Methods"))
	}
	// Output:
	// 204 https://app.example.com POST
	// 403
}

// WithRejectMiddleware sees the requests the server refuses before an endpoint runs, as
// failed calls: svckit's App passes its access log and metrics, so that malformed
// requests and unknown routes are logged and counted.
func ExampleWithRejectMiddleware() {
	seen := func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := next(ctx, req)
			fmt.Println("refused:", info.Method, svcerr.KindOf(err))
			return resp, err
		}
	}
	srv := shttp.NewServer("greeter", shttp.WithRejectMiddleware(seen))
	shttp.Handle(srv, "POST /greet", "Greet", greet)
	ts := httptest.NewServer(srv)
	defer ts.Close()

	resp, _ := http.Post(ts.URL+"/greet", "application/json", strings.NewReader(`{"name":`))
	resp.Body.Close()
	resp, _ = http.Get(ts.URL + "/wp-admin.php")
	resp.Body.Close()
	// Output:
	// refused: Greet invalid_argument
	// refused: unmatched not_found
}
