package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func problemOf(t *testing.T, resp *http.Response, body []byte) shttp.Problem {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != shttp.ProblemContentType {
		t.Fatalf("content type %q, want problem+json; body %s", ct, body)
	}
	var p shttp.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	return p
}

// TestH2CPriorKnowledge serves a Server with Protocols and calls it with an HTTP/2 client
// that speaks cleartext HTTP/2 from the first byte, as curl --http2-prior-knowledge and
// proxies in front of services do; HTTP/1.1 clients are served on the same port.
func TestH2CPriorKnowledge(t *testing.T) {
	srv := &http.Server{Handler: sumServer(), Protocols: shttp.Protocols()}
	addr := serveRaw(t, srv, shttp.ProblemListener)
	for _, tc := range []struct {
		name  string
		proto func(*http.Protocols)
		major int
	}{
		{"h2c", func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) }, 2},
		{"http/1.1", func(p *http.Protocols) { p.SetHTTP1(true) }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tc.proto(tr.Protocols)
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr}
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/sum", strings.NewReader(`{"a":2,"b":3}`))
			req.Header.Set("Content-Type", "application/json")
			resp, body := do(t, c, req)
			if resp.StatusCode != 200 || resp.ProtoMajor != tc.major || strings.TrimSpace(string(body)) != `{"v":5}` {
				t.Fatalf("%s %d %s, want HTTP/%d 200 {\"v\":5}", resp.Proto, resp.StatusCode, body, tc.major)
			}
			// Errors are problem+json over HTTP/2 too.
			req, _ = http.NewRequest(http.MethodGet, "http://"+addr+"/nope", nil)
			resp, body = do(t, c, req)
			if p := problemOf(t, resp, body); resp.StatusCode != 404 || p.Kind != "not_found" || resp.ProtoMajor != tc.major {
				t.Fatalf("%s %d %+v", resp.Proto, resp.StatusCode, p)
			}
		})
	}
}

// TestRequestContentEncoding sends request bodies in Content-Encodings: gzip is decoded
// within the body limit, both as sent and decoded (a zip bomb gets 413), and other
// encodings get 415 naming the one the server takes.
func TestRequestContentEncoding(t *testing.T) {
	const limit = 64 << 10
	srv := newTestServer(t, shttp.WithMaxBodyBytes(limit))
	bomb := gzipped(t, bytes.Repeat([]byte{' '}, 16<<20)) // 16 MiB of spaces: valid JSON whitespace
	if len(bomb) >= limit {
		t.Fatalf("the bomb is %d bytes compressed; it must fit the limit", len(bomb))
	}
	big := gzipped(t, bytes.Repeat([]byte{'x'}, 2*limit))
	tests := []struct {
		name, encoding string
		body           []byte
		status         int
		kind, detail   string
		accept         string
	}{
		{"gzip", "gzip", gzipped(t, []byte(`{"a":40,"b":2}`)), 200, "", "", ""},
		{"x-gzip, upper case", "X-GZIP", gzipped(t, []byte(`{"a":40,"b":2}`)), 200, "", "", ""},
		{"identity", "identity", []byte(`{"a":40,"b":2}`), 200, "", "", ""},
		{"zip bomb", "gzip", bomb, 413, "resource_exhausted", "decompressed request body is larger than the limit of 65536 bytes", ""},
		{"compressed over the limit", "gzip", append(big, bytes.Repeat([]byte{0}, limit)...), 413, "resource_exhausted", "larger than the limit", ""},
		{"malformed gzip", "gzip", []byte(`{"a":40,"b":2}`), 400, "invalid_argument", "malformed gzip request body", ""},
		{"truncated gzip", "gzip", gzipped(t, []byte(`{"a":40,"b":2}`))[:20], 400, "invalid_argument", "malformed gzip request body", ""},
		{"brotli", "br", []byte(`{"a":40,"b":2}`), 415, "invalid_argument", `unsupported content encoding "br"`, "gzip"},
		{"two codings", "gzip, gzip", gzipped(t, gzipped(t, []byte(`{}`))), 415, "invalid_argument", "unsupported content encoding", "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sum", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", tc.encoding)
			resp, body := do(t, srv.Client(), req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				if strings.TrimSpace(string(body)) != `{"v":42}` {
					t.Fatalf("body %s", body)
				}
				return
			}
			p := problemOf(t, resp, body)
			if p.Kind != tc.kind || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem %+v, want kind %s, detail containing %q", p, tc.kind, tc.detail)
			}
			if tc.status == 413 && p.Title != "Content Too Large" {
				t.Errorf("title %q, want RFC 9110's Content Too Large", p.Title)
			}
			if got := resp.Header.Get("Accept-Encoding"); got != tc.accept {
				t.Errorf("Accept-Encoding %q, want %q", got, tc.accept)
			}
		})
	}
}

// TestResponseGzip asks for a large and a small response with and without
// Accept-Encoding: gzip; only a large one to a client that takes gzip is compressed.
func TestResponseGzip(t *testing.T) {
	s := shttp.NewServer("testsvc")
	shttp.Handle(s, "GET /big", "Big", func(context.Context, struct{}) (map[string]string, error) {
		return map[string]string{"text": strings.Repeat("svckit ", 1000)}, nil
	})
	shttp.Handle(s, "GET /small", "Small", func(context.Context, struct{}) (map[string]string, error) {
		return map[string]string{"text": "svckit"}, nil
	})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	// A transport that leaves Content-Encoding alone, to see what the server sent.
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	tests := []struct {
		path, accept string
		gzip, vary   bool
	}{
		{"/big", "gzip", true, true},
		{"/big", "br;q=1, gzip;q=0.5", true, true},
		{"/big", "*", true, true},
		{"/big", "gzip;q=0", false, true},
		{"/big", "*, gzip;q=0", false, true},
		{"/big", "", false, true},
		{"/big", "br", false, true},
		{"/small", "gzip", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.accept, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			resp, body := do(t, c, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
				t.Fatalf("gzip %v, want %v", got, tc.gzip)
			}
			if got := slices.Contains(resp.Header.Values("Vary"), "Accept-Encoding"); got != tc.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", resp.Header.Values("Vary"), tc.vary)
			}
			if tc.gzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			var m map[string]string
			if err := json.Unmarshal(body, &m); err != nil || !strings.HasPrefix(m["text"], "svckit") {
				t.Fatalf("body %.80s: %v", body, err)
			}
		})
	}
	// net/http's transport, which svckit's Client uses, asks for gzip by itself and hands
	// back the decoded body.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
	resp, body := do(t, srv.Client(), req)
	if !resp.Uncompressed || !bytes.HasPrefix(body, []byte(`{"text":"svckit `)) {
		t.Fatalf("uncompressed %v, body %.40s", resp.Uncompressed, body)
	}
}

// TestCORS checks the CORS protocol: off by default, preflights from allowed origins
// answered with the path's methods, others refused, and actual requests from allowed
// origins given Access-Control-Allow-Origin.
func TestCORS(t *testing.T) {
	preflight := func(t *testing.T, url, origin, method string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodOptions, url, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "content-type, x-request-id")
		return do(t, http.DefaultClient, req)
	}
	t.Run("off by default", func(t *testing.T) {
		srv := newTestServer(t)
		resp, body := preflight(t, srv.URL+"/sum", "https://app.example.com", "POST")
		if resp.StatusCode != 405 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("status %d, ACAO %q: %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), body)
		}
	})
	srv := newTestServer(t, shttp.WithCORS(shttp.CORS{AllowedOrigins: []string{"https://app.example.com"}}))
	tests := []struct {
		name, path, origin, method string
		status                     int
		acao, methods              string
	}{
		{"allowed", "/sum", "https://app.example.com", "POST", 204, "https://app.example.com", "POST"},
		{"allowed, origin case", "/items/7", "HTTPS://APP.example.com", "DELETE", 204, "HTTPS://APP.example.com", "DELETE, GET, HEAD"},
		{"other origin", "/sum", "https://evil.example", "POST", 403, "", ""},
		{"other port", "/sum", "https://app.example.com:8443", "POST", 403, "", ""},
		{"method not routed", "/sum", "https://app.example.com", "PUT", 405, "", ""},
		{"unknown path", "/nope", "https://app.example.com", "POST", 404, "https://app.example.com", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := preflight(t, srv.URL+tc.path, tc.origin, tc.method)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.acao {
				t.Errorf("ACAO %q, want %q", got, tc.acao)
			}
			if got := resp.Header.Get("Access-Control-Allow-Methods"); got != tc.methods {
				t.Errorf("ACAM %q, want %q", got, tc.methods)
			}
			if !slices.Contains(resp.Header.Values("Vary"), "Origin") {
				t.Errorf("Vary %q lacks Origin", resp.Header.Values("Vary"))
			}
			if tc.status == 204 {
				if h := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "content-type") || !strings.Contains(h, "x-request-id") {
					t.Errorf("ACAH %q", h)
				}
				if resp.Header.Get("Access-Control-Max-Age") != "600" {
					t.Errorf("max age %q", resp.Header.Get("Access-Control-Max-Age"))
				}
			} else {
				problemOf(t, resp, body)
			}
		})
	}
	t.Run("actual request", func(t *testing.T) {
		for _, origin := range []string{"https://app.example.com", "https://evil.example"} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/sum", strings.NewReader(`{"a":1,"b":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Origin", origin)
			resp, body := do(t, http.DefaultClient, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			allowed := origin == "https://app.example.com"
			if got := resp.Header.Get("Access-Control-Allow-Origin"); (got == origin) != allowed || (!allowed && got != "") {
				t.Errorf("%s: ACAO %q", origin, got)
			}
			if got := strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id"); got != allowed {
				t.Errorf("%s: expose headers %q", origin, resp.Header.Get("Access-Control-Expose-Headers"))
			}
		}
	})
	t.Run("any origin", func(t *testing.T) {
		srv := newTestServer(t, shttp.WithCORS(shttp.CORS{AllowedOrigins: []string{"*"}}))
		resp, _ := preflight(t, srv.URL+"/sum", "https://anyone.example", "POST")
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("status %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("invalid origins", func(t *testing.T) {
		for _, o := range []string{"app.example.com", "https://app.example.com/", "ftp://x", "https://", "https://a.example/path"} {
			if err := (shttp.CORS{AllowedOrigins: []string{o}}).Validate(); err == nil {
				t.Errorf("Validate accepted %q", o)
			}
		}
		if err := (shttp.CORS{AllowedOrigins: []string{"*", "http://localhost:3000"}}).Validate(); err != nil {
			t.Error(err)
		}
	})
}

// rejection is what reject middleware saw of one rejected request.
type rejection struct {
	method string
	kind   svcerr.Kind
}

type rejections struct {
	mu   sync.Mutex
	seen []rejection
}

func (r *rejections) middleware(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, req any) (any, error) {
		resp, err := next(ctx, req)
		r.mu.Lock()
		r.seen = append(r.seen, rejection{info.Method, svcerr.KindOf(err)})
		r.mu.Unlock()
		return resp, err
	}
}

// TestRejectMiddleware checks that requests refused before the endpoint reach the reject
// middleware with the route's method, or "unmatched" when no route matched.
func TestRejectMiddleware(t *testing.T) {
	var rec rejections
	srv := newTestServer(t, shttp.WithMaxBodyBytes(64), shttp.WithRejectMiddleware(rec.middleware))
	tests := []struct {
		method, path, ctype, body string
		status                    int
		want                      rejection
	}{
		{"POST", "/sum", "application/json", `{"a":`, 400, rejection{"Sum", svcerr.InvalidArgument}},
		{"POST", "/sum", "application/json", strings.Repeat(" ", 100), 413, rejection{"Sum", svcerr.ResourceExhausted}},
		{"POST", "/sum", "text/plain", `{}`, 415, rejection{"Sum", svcerr.InvalidArgument}},
		{"GET", "/items/bad", "", ``, 400, rejection{"Get", svcerr.InvalidArgument}},
		{"GET", "/nope/" + strings.Repeat("x", 300), "", ``, 404, rejection{shttp.UnmatchedMethod, svcerr.NotFound}},
		{"PATCH", "/sum", "", ``, 405, rejection{shttp.UnmatchedMethod, svcerr.InvalidArgument}},
		{"POST", "/sum", "application/json", `{"a":1}`, 200, rejection{}},
		{"GET", "/items/missing", "", ``, 404, rejection{}}, // the endpoint's own error: not a rejection
	}
	for _, tc := range tests {
		rec.mu.Lock()
		rec.seen = nil
		rec.mu.Unlock()
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, body := do(t, srv.Client(), req)
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.status, body)
		}
		rec.mu.Lock()
		seen := rec.seen
		rec.mu.Unlock()
		var want []rejection
		if tc.want != (rejection{}) {
			want = []rejection{tc.want}
		}
		if !slices.Equal(seen, want) {
			t.Errorf("%s %.20s: reject middleware saw %v, want %v", tc.method, tc.path, seen, want)
		}
	}
}

// TestHTTP2OverTLS: with Protocols, a TLS listener that offers ALPN h2 serves HTTP/2.
func TestHTTP2OverTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(sumServer())
	ts.EnableHTTP2 = true
	ts.Config.Protocols = shttp.Protocols()
	ts.StartTLS()
	t.Cleanup(ts.Close)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/sum", strings.NewReader(`{"a":2,"b":2}`))
	req.Header.Set("Content-Type", "application/json")
	resp, body := do(t, ts.Client(), req)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || resp.TLS == nil || strings.TrimSpace(string(body)) != `{"v":4}` {
		t.Fatalf("%s %d %s", resp.Proto, resp.StatusCode, body)
	}
}

// FuzzEncodings sends arbitrary Content-Encoding and Accept-Encoding values and bodies:
// never a panic, and every answer is a 200 (plain or gzip JSON) or a 4xx problem+json.
func FuzzEncodings(f *testing.F) {
	gz := gzipped(f, []byte(`{"a":1,"b":2}`))
	f.Add("gzip", "gzip", gz)
	f.Add("gzip", "", gz[:10])
	f.Add("x-gzip", "gzip;q=0, *", gz)
	f.Add("identity", "br;q=0.5, gzip;q=0.001", []byte(`{"a":1}`))
	f.Add("deflate", "*;q=0", []byte(`{}`))
	f.Add("GZIP ", "gzip;q=abc", append(gz, gz...))
	f.Add("gzip", "gzip", gzipped(f, bytes.Repeat([]byte(" "), 1<<20)))
	s := shttp.NewServer("fuzz", shttp.WithMaxBodyBytes(4096))
	shttp.Handle(s, "POST /sum", "Sum", func(_ context.Context, r sumReq) (map[string]string, error) {
		return map[string]string{"pad": strings.Repeat("x", r.A%4096)}, nil
	})
	f.Fuzz(func(t *testing.T, ce, ae string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/sum", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Content-Encoding", ce)
		req.Header.Set("Accept-Encoding", ae)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		res := rec.Result()
		raw, _ := io.ReadAll(res.Body)
		switch {
		case res.StatusCode == 200:
			if res.Header.Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatalf("gzip response: %v", err)
				}
				if raw, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gzip response: %v", err)
				}
			}
			var out map[string]string
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("200 with non-JSON body %q", raw)
			}
		case res.StatusCode >= 400 && res.StatusCode < 500:
			var p shttp.Problem
			if res.Header.Get("Content-Type") != shttp.ProblemContentType || json.Unmarshal(raw, &p) != nil || p.Status != res.StatusCode {
				t.Fatalf("bad problem response %d %q", res.StatusCode, raw)
			}
		default:
			t.Fatalf("status %d: %s", res.StatusCode, raw)
		}
	})
}
