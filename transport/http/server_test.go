package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

type sumReq struct {
	A int `json:"a"`
	B int `json:"b"`
}

type sumResp struct {
	V int `json:"v"`
}

type getReq struct {
	ID string `json:"-"`
	Q  string `json:"-"`
}

func (g *getReq) BindRequest(r *http.Request) error {
	g.ID = r.PathValue("id")
	g.Q = r.URL.Query().Get("q")
	if g.ID == "bad" {
		return svcerr.Invalid("id", "must not be bad")
	}
	return nil
}

func (g getReq) PathParam(name string) string {
	if name == "id" {
		return g.ID
	}
	return ""
}

func newTestServer(t *testing.T, opts ...shttp.ServerOption) *httptest.Server {
	t.Helper()
	s := shttp.NewServer("testsvc", opts...)
	shttp.Handle(s, "POST /sum", "Sum", func(_ context.Context, r sumReq) (sumResp, error) {
		return sumResp{V: r.A + r.B}, nil
	})
	shttp.Handle(s, "GET /items/{id}", "Get", func(_ context.Context, r getReq) (map[string]string, error) {
		if r.ID == "missing" {
			return nil, svcerr.New(svcerr.NotFound, "item missing does not exist")
		}
		return map[string]string{"id": r.ID, "q": r.Q}, nil
	})
	shttp.Handle(s, "DELETE /items/{key}", "Delete", func(_ context.Context, r struct{}) (struct{}, error) {
		return struct{}{}, nil
	})
	shttp.Handle(s, "POST /panic", "Panic", func(_ context.Context, r sumReq) (sumResp, error) {
		if r.A == 1 {
			panic("boom")
		}
		return sumResp{V: 42}, nil
	})
	shttp.Handle(s, "POST /fail", "Fail", func(_ context.Context, r sumReq) (sumResp, error) {
		return sumResp{}, errors.New("database password is hunter2")
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

func TestBadInputs(t *testing.T) {
	srv := newTestServer(t, shttp.WithMaxBodyBytes(64))
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		kind                            string
		detail                          string // substring of the detail
		field                           string
		allow                           string
	}{
		{"malformed json", "POST", "/sum", "application/json", `{"a":1,`, 400, "invalid_argument", "malformed JSON", "", ""},
		{"syntax error offset", "POST", "/sum", "application/json", `{"a":1 "b":2}`, 400, "invalid_argument", "at byte", "", ""},
		{"trailing garbage", "POST", "/sum", "application/json", `{"a":1}{"b":2}`, 400, "invalid_argument", "malformed JSON", "", ""},
		{"over limit", "POST", "/sum", "application/json", `{"a":1,"b":2,"pad":"` + strings.Repeat("x", 100) + `"}`, 413, "resource_exhausted", "limit of 64 bytes", "", ""},
		{"wrong content type", "POST", "/sum", "text/plain", `{"a":1}`, 415, "invalid_argument", "unsupported content type", "", ""},
		{"form content type", "POST", "/sum", "application/x-www-form-urlencoded", `a=1`, 415, "invalid_argument", "application/json", "", ""},
		{"missing content type", "POST", "/sum", "", `{"a":1}`, 415, "invalid_argument", "none", "", ""},
		{"unknown route", "GET", "/nope", "", ``, 404, "not_found", "no route for GET /nope", "", ""},
		{"wrong method", "GET", "/sum", "", ``, 405, "invalid_argument", "not allowed", "", "POST"},
		{"wrong method on wildcard path", "PUT", "/items/7", "", ``, 405, "invalid_argument", "not allowed", "", "DELETE, GET, HEAD"},
		{"string for int", "POST", "/sum", "application/json", `{"a":"x","b":2}`, 400, "invalid_argument", "field a", "a", ""},
		{"float for int", "POST", "/sum", "application/json", `{"a":1.5}`, 400, "invalid_argument", "must be an integer", "a", ""},
		{"array for object", "POST", "/sum", "application/json", `[1,2]`, 400, "invalid_argument", "must be an object", "", ""},
		{"binder rejects", "GET", "/items/bad", "", ``, 400, "invalid_argument", "id: must not be bad", "id", ""},
		{"endpoint not found", "GET", "/items/missing", "", ``, 404, "not_found", "item missing does not exist", "", ""},
		{"internal error hides text", "POST", "/fail", "application/json", `{}`, 500, "internal", "internal error", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.status, raw)
			}
			if ct := resp.Header.Get("Content-Type"); ct != shttp.ProblemContentType {
				t.Fatalf("content type = %q, want problem+json", ct)
			}
			var p shttp.Problem
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, raw)
			}
			if p.Status != tc.status || p.Kind != tc.kind || p.Title == "" || p.Type == "" {
				t.Fatalf("problem = %+v, want status %d kind %s", p, tc.status, tc.kind)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("detail = %q, want it to contain %q", p.Detail, tc.detail)
			}
			if strings.Contains(string(raw), "hunter2") {
				t.Fatalf("internal error text leaked: %s", raw)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Fatalf("errors = %+v, want field %q", p.Errors, tc.field)
			}
			if tc.allow != "" && resp.Header.Get("Allow") != tc.allow {
				t.Fatalf("Allow = %q, want %q", resp.Header.Get("Allow"), tc.allow)
			}
			if p.RequestID == "" || resp.Header.Get("X-Request-Id") != p.RequestID {
				t.Fatalf("request id %q missing or not echoed (%q)", p.RequestID, resp.Header.Get("X-Request-Id"))
			}
		})
	}
}

func TestGoodRequests(t *testing.T) {
	srv := newTestServer(t)
	tests := []struct {
		name, method, path, ctype, body, want string
	}{
		{"sum", "POST", "/sum", "application/json", `{"a":1,"b":2}`, `{"v":3}`},
		{"charset param", "POST", "/sum", "application/json; charset=utf-8", `{"a":1,"b":2}`, `{"v":3}`},
		{"vendor json", "POST", "/sum", "application/vnd.api+json", `{"a":5,"b":2}`, `{"v":7}`},
		{"empty body is zero request", "POST", "/sum", "", ``, `{"v":0}`},
		{"unknown fields ignored", "POST", "/sum", "application/json", `{"a":1,"b":2,"c":9}`, `{"v":3}`},
		{"path and query binding", "GET", "/items/42?q=x", "", ``, `{"id":"42","q":"x"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || strings.TrimSpace(string(raw)) != tc.want {
				t.Fatalf("got %d %s, want 200 %s", resp.StatusCode, raw, tc.want)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestStrictFields(t *testing.T) {
	srv := newTestServer(t, shttp.WithStrictFields())
	resp, err := srv.Client().Post(srv.URL+"/sum", "application/json", strings.NewReader(`{"a":1,"c":2}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p shttp.Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	if resp.StatusCode != 400 || len(p.Errors) != 1 || p.Errors[0].Field != "c" {
		t.Fatalf("got %d %+v, want 400 naming field c", resp.StatusCode, p)
	}
}

func TestPanicReturnsInternalAndServerKeepsServing(t *testing.T) {
	srv := newTestServer(t)
	for i, tc := range []struct {
		body   string
		status int
	}{{`{"a":1}`, 500}, {`{"a":2}`, 200}, {`{"a":1}`, 500}, {`{"a":3}`, 200}} {
		resp, err := srv.Client().Post(srv.URL+"/panic", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		var p shttp.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("call %d: status %d, want %d", i, resp.StatusCode, tc.status)
		}
		if tc.status == 500 && p.Kind != "internal" {
			t.Fatalf("call %d: kind %q, want internal", i, p.Kind)
		}
	}
}

func TestClientRoundTripsErrorKinds(t *testing.T) {
	s := shttp.NewServer("kinds")
	shttp.Handle(s, "POST /err", "Err", func(_ context.Context, r struct {
		Kind string `json:"kind"`
	}) (struct{}, error) {
		k, _ := svcerr.ParseKind(r.Kind)
		return struct{}{}, &svcerr.Error{Kind: k, Message: "msg " + r.Kind,
			Fields: []svcerr.FieldViolation{{Field: "f", Description: "d"}}, Meta: map[string]string{"reason": "R"}}
	})
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, err := shttp.NewClient(srv.URL, "kinds")
	if err != nil {
		t.Fatal(err)
	}
	call := shttp.Call[struct {
		Kind string `json:"kind"`
	}, struct{}](c, "POST /err", "Err")
	for k := svcerr.InvalidArgument; k <= svcerr.DataLoss; k++ {
		t.Run(k.String(), func(t *testing.T) {
			_, err := call(context.Background(), struct {
				Kind string `json:"kind"`
			}{k.String()})
			var e *svcerr.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *svcerr.Error", err)
			}
			wantMsg := "msg " + k.String()
			if k == svcerr.Internal || k == svcerr.Unknown {
				wantMsg = e.Message // internal messages are allowed through only when set by the service
			}
			if e.Kind != k || e.Message != wantMsg || len(e.Fields) != 1 || e.Meta["reason"] != "R" {
				t.Fatalf("got %+v, want kind %s", e, k)
			}
		})
	}
}

func TestClientPathParamsAndNotFound(t *testing.T) {
	srv := newTestServer(t)
	c, err := shttp.NewClient(srv.URL, "testsvc")
	if err != nil {
		t.Fatal(err)
	}
	get := shttp.Call[getReq, map[string]string](c, "GET /items/{id}", "Get")
	got, err := get(context.Background(), getReq{ID: "a b"})
	if err != nil || got["id"] != "a b" {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = get(context.Background(), getReq{ID: "missing"})
	if svcerr.KindOf(err) != svcerr.NotFound {
		t.Fatalf("err = %v, want not_found", err)
	}
	_, err = get(context.Background(), getReq{})
	if svcerr.KindOf(err) != svcerr.InvalidArgument {
		t.Fatalf("err = %v, want invalid_argument for empty path param", err)
	}
}

func TestMiddlewareRunsOnServerAndClient(t *testing.T) {
	var seen []string
	rec := func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			side := "server"
			if info.Client {
				side = "client"
			}
			seen = append(seen, side+":"+info.Transport+":"+info.FullName())
			return next(ctx, req)
		}
	}
	s := shttp.NewServer("mw", shttp.WithMiddleware(rec))
	shttp.Handle(s, "POST /sum", "Sum", func(_ context.Context, r sumReq) (sumResp, error) { return sumResp{V: r.A + r.B}, nil })
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, _ := shttp.NewClient(srv.URL, "mw", shttp.WithClientMiddleware(rec))
	sum := shttp.Call[sumReq, sumResp](c, "POST /sum", "Sum")
	got, err := sum(context.Background(), sumReq{A: 2, B: 3})
	if err != nil || got.V != 5 {
		t.Fatalf("got %v %v", got, err)
	}
	want := []string{"client:http:mw.Sum", "server:http:mw.Sum"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("seen %v, want %v", seen, want)
	}
}

func TestClientUnavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := shttp.NewClient(url, "gone")
	_, err := shttp.Call[sumReq, sumResp](c, "POST /sum", "Sum")(context.Background(), sumReq{})
	if svcerr.KindOf(err) != svcerr.Unavailable {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if _, err := shttp.NewClient("ftp://x", "bad"); err == nil {
		t.Fatal("want error for ftp base URL")
	}
}

// TestRoutesThatShareAPrefix checks that a wildcard route beside a literal one on another
// method registers without conflict and that 405 still names the right methods.
func TestRoutesThatShareAPrefix(t *testing.T) {
	s := shttp.NewServer("prefix")
	shttp.Handle(s, "GET /payments/{orderID}", "Get", func(_ context.Context, r getReq) (string, error) { return "get", nil })
	shttp.Handle(s, "POST /payments/charge", "Charge", func(_ context.Context, r struct{}) (string, error) { return "charge", nil })
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/payments/o1", 200, ""},
		{"POST", "/payments/charge", 200, ""},
		{"DELETE", "/payments/charge", 405, "POST"},
		{"DELETE", "/payments/o1", 405, "GET, HEAD"},
		{"GET", "/nope", 404, ""},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d Allow %q, want %d %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.status, tc.allow)
		}
	}
}

// oneByteReader returns its data one byte per Read, so that a body arrives in many chunks.
type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

// TestBodyLimitUnknownLength sends bodies without a Content-Length (chunked) around the
// body limit, whole and in many small chunks: a body of exactly the limit is served, one
// byte more is a 413, and a body larger than the read buffer's first growth is read whole.
func TestBodyLimitUnknownLength(t *testing.T) {
	const limit = 1000
	srv := newTestServer(t, shttp.WithMaxBodyBytes(limit))
	// pad makes a valid sum request of n bytes by padding with spaces.
	pad := func(n int) string {
		body := `{"a":1,"b":2}`
		return body + strings.Repeat(" ", n-len(body))
	}
	for _, tc := range []struct {
		name    string
		body    string
		chunked bool // one byte per read on the client side
		status  int
	}{
		{"small", pad(13), false, 200},
		{"over 512 bytes", pad(700), false, 200},
		{"exactly the limit", pad(limit), false, 200},
		{"exactly the limit, byte by byte", pad(limit), true, 200},
		{"one byte over", pad(limit + 1), false, 413},
		{"one byte over, byte by byte", pad(limit + 1), true, 413},
		{"far over", pad(10 * limit), false, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = &oneByteReader{tc.body}
			}
			// io.NopCloser hides the length: the client sends the body chunked.
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/sum", io.NopCloser(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
			}
			if tc.status == 200 && strings.TrimSpace(string(raw)) != `{"v":3}` {
				t.Fatalf("body %s", raw)
			}
			if tc.status == 413 && !strings.Contains(string(raw), "limit of 1000 bytes") {
				t.Fatalf("problem %s does not name the limit", raw)
			}
		})
	}
}

// TestKeepAliveAfterBodies sends requests with bodies, plain, identity-encoded and gzip,
// good and refused, one after another on one HTTP/1.1 connection: reading a body to its
// end (and closing it) must leave the connection to the next request.
func TestKeepAliveAfterBodies(t *testing.T) {
	s := shttp.NewServer("keepalive", shttp.WithMaxBodyBytes(64))
	shttp.Handle(s, "POST /sum", "Sum", func(_ context.Context, r sumReq) (sumResp, error) {
		return sumResp{V: r.A + r.B}, nil
	})
	srv := httptest.NewServer(s)
	defer srv.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"a":2,"b":3}`))
	_ = zw.Close()
	tests := []struct {
		name, body, encoding string
		status               int
	}{
		{"plain", `{"a":1,"b":2}`, "", 200},
		{"identity", `{"a":1,"b":2}`, "identity", 200},
		{"gzip", gz.String(), "gzip", 200},
		{"malformed", `{"a":`, "", 400},
		{"unknown field", `{"a":1,"c":2}`, "", 200},
		{"plain again", `{"a":1,"b":2}`, "", 200},
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var first string
	for i, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sum", strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		if tt.encoding != "" {
			req.Header.Set("Content-Encoding", tt.encoding)
		}
		var local string
		var reused bool
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) { local, reused = ci.Conn.LocalAddr().String(), ci.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
		if i == 0 {
			first = local
			continue
		}
		if !reused || local != first {
			t.Errorf("%s: a new connection (%s, reused %v) after the previous request on %s", tt.name, local, reused, first)
		}
	}
}
