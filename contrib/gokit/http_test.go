package gokit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	kitendpoint "github.com/go-kit/kit/endpoint"
	kithttp "github.com/go-kit/kit/transport/http"

	"github.com/svckit/svckit/contrib/gokit"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// Compile-time checks: the adapters' errors and encoder fit go-kit's HTTP transport.
var (
	_ kithttp.StatusCoder  = gokit.ErrorToKit(svcerr.New(svcerr.NotFound, "")).(kithttp.StatusCoder)
	_ kithttp.ErrorEncoder = gokit.ErrorEncoder
)

// calc is the svckit endpoint served through go-kit's HTTP server in these tests.
func calc(_ context.Context, req sumRequest) (sumResponse, error) {
	switch {
	case req.A < 0:
		return sumResponse{}, svcerr.Invalid("a", "must not be negative")
	case req.A == 409:
		return sumResponse{}, svcerr.New(svcerr.Aborted, "concurrent update").WithMeta("retry_after", "3")
	case req.A == 500:
		return sumResponse{}, fmt.Errorf("connect to db at 10.0.0.7: refused")
	}
	return sumResponse{V: req.A + req.B}, nil
}

// decodeSum is a go-kit style request decoder; it returns a pointer, which ToKit accepts.
func decodeSum(_ context.Context, r *http.Request) (interface{}, error) {
	var req sumRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return nil, kithttpError{code: http.StatusBadRequest, msg: "bad json: " + err.Error()}
	}
	return &req, nil
}

// decodeWrong returns a request of the wrong type, as a mis-wired decoder would.
func decodeWrong(context.Context, *http.Request) (interface{}, error) { return "sum please", nil }

type kithttpError struct {
	code int
	msg  string
}

func (e kithttpError) Error() string   { return e.msg }
func (e kithttpError) StatusCode() int { return e.code }

// decodeSumResponse is a go-kit style client decoder: non-2xx responses become errors that
// carry the status code, as go-kit services commonly write them.
func decodeSumResponse(_ context.Context, r *http.Response) (interface{}, error) {
	if r.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(r.Body)
		return nil, kithttpError{code: r.StatusCode, msg: strings.TrimSpace(string(body))}
	}
	var resp sumResponse
	if err := json.NewDecoder(r.Body).Decode(&resp); err != nil {
		return nil, err
	}
	return resp, nil
}

func serveKit(t *testing.T, e kitendpoint.Endpoint, dec kithttp.DecodeRequestFunc, opts ...kithttp.ServerOption) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(kithttp.NewServer(e, dec, kithttp.EncodeJSONResponse, opts...))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, body string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestKitHTTPServerServesSvckitEndpoint(t *testing.T) {
	srv := serveKit(t, gokit.ToKit(calc), decodeSum)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantCT     string
		wantBody   string
	}{
		{name: "ok", body: `{"A":40,"B":2}`, wantStatus: 200, wantCT: "application/json; charset=utf-8",
			wantBody: `{"V":42}`},
		{name: "invalid", body: `{"A":-1}`, wantStatus: 400, wantCT: "application/json; charset=utf-8",
			wantBody: `{"type":"about:blank","title":"Bad Request","status":400,"detail":"a: must not be negative","kind":"invalid_argument","errors":[{"field":"a","description":"must not be negative"}]}`},
		{name: "internal text hidden", body: `{"A":500}`, wantStatus: 500, wantCT: "application/json; charset=utf-8",
			wantBody: `{"type":"about:blank","title":"Internal Server Error","status":500,"detail":"internal error","kind":"internal"}`},
		{name: "go-kit decoder error keeps its status", body: `{`, wantStatus: 400, wantCT: "text/plain; charset=utf-8",
			wantBody: "bad json: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantCT)
			}
			if strings.TrimSpace(body) != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", body, tt.wantBody)
			}
		})
	}
}

func TestKitHTTPServerRequestTypeMismatch(t *testing.T) {
	srv := serveKit(t, gokit.ToKit(calc), decodeWrong)
	resp, body := post(t, srv, `{}`)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(body, "request of type string, want gokit_test.sumRequest") {
		t.Errorf("body = %s, want it to name both types", body)
	}
}

func TestKitHTTPServerWithErrorEncoder(t *testing.T) {
	srv := serveKit(t, gokit.ToKit(calc), decodeSum, kithttp.ServerErrorEncoder(gokit.ErrorEncoder))
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantKind   string
		wantDetail string
		wantRetry  string
	}{
		{name: "aborted keeps its kind", body: `{"A":409}`, wantStatus: 409, wantKind: "aborted",
			wantDetail: "concurrent update", wantRetry: "3"},
		{name: "invalid", body: `{"A":-2}`, wantStatus: 400, wantKind: "invalid_argument", wantDetail: "a: must not be negative"},
		{name: "internal text hidden", body: `{"A":500}`, wantStatus: 500, wantKind: "internal", wantDetail: "internal error"},
		{name: "go-kit decoder error", body: `nope`, wantStatus: 400, wantKind: "invalid_argument",
			wantDetail: "bad json: invalid character 'o' in literal null (expecting 'u')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, tt.body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); ct != gokit.ProblemContentType {
				t.Errorf("Content-Type = %q, want %q", ct, gokit.ProblemContentType)
			}
			if ra := resp.Header.Get("Retry-After"); ra != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", ra, tt.wantRetry)
			}
			var p struct {
				Status int    `json:"status"`
				Kind   string `json:"kind"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal([]byte(body), &p); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if p.Status != tt.wantStatus || p.Kind != tt.wantKind || p.Detail != tt.wantDetail {
				t.Errorf("problem = %+v, want status %d kind %q detail %q", p, tt.wantStatus, tt.wantKind, tt.wantDetail)
			}
		})
	}
}

// TestRoundTripOverHTTP: a svckit endpoint served by go-kit's HTTP server (ToKit), called
// through go-kit's HTTP client endpoint turned back into a typed svckit endpoint (FromKit),
// with go-kit and svckit middleware on both sides.
func TestRoundTripOverHTTP(t *testing.T) {
	tr := &tracer{}
	info := endpoint.Info{Service: "calc", Method: "Sum", Transport: "http"}
	server := endpoint.Wrap(info, calc, tr.svc("server-svckit"), gokit.Middleware(tr.kit("server-kit")))
	srv := serveKit(t, gokit.ToKit(server), decodeSum)

	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	kitClient := kithttp.NewClient(http.MethodPost, u, kithttp.EncodeJSONRequest, decodeSumResponse,
		kithttp.SetClient(srv.Client())).Endpoint()
	clientInfo := info
	clientInfo.Client = true
	client := endpoint.Wrap(clientInfo, gokit.FromKit[sumRequest, sumResponse](tr.kit("client-kit")(kitClient)),
		tr.svc("client-svckit"))

	got, err := client(context.Background(), sumRequest{A: 40, B: 2})
	if err != nil || got.V != 42 {
		t.Fatalf("got %+v, %v", got, err)
	}
	want := "client-svckit> client-kit> server-svckit> server-kit> <server-kit <server-svckit <client-kit <client-svckit"
	if steps := strings.Join(tr.steps, " "); steps != want {
		t.Errorf("steps = %s\nwant    %s", steps, want)
	}

	tests := []struct {
		name     string
		req      sumRequest
		wantKind svcerr.Kind
	}{
		{name: "invalid", req: sumRequest{A: -1}, wantKind: svcerr.InvalidArgument},
		{name: "internal", req: sumRequest{A: 500}, wantKind: svcerr.Internal},
		// Status 409 alone cannot tell Aborted from AlreadyExists; see ErrorEncoder.
		{name: "aborted by status", req: sumRequest{A: 409}, wantKind: svcerr.AlreadyExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client(context.Background(), tt.req)
			if k := svcerr.KindOf(err); k != tt.wantKind {
				t.Errorf("kind = %v, want %v (err %v)", k, tt.wantKind, err)
			}
			if strings.Contains(err.Error(), "10.0.0.7") {
				t.Errorf("internal error text reached the client: %v", err)
			}
		})
	}
}
