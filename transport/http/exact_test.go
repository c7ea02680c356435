package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	shttp "github.com/svckit/svckit/transport/http"
)

// patternReq carries the request's Pattern, as the router left it, to the response.
type patternReq struct{ Pattern, ID string }

func decodePattern(r *http.Request) (patternReq, error) {
	return patternReq{Pattern: r.Pattern, ID: r.PathValue("id")}, nil
}

func encodePattern(w http.ResponseWriter, _ *http.Request, p patternReq) error {
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte(p.Pattern + "|" + p.ID))
	return err
}

// routedServer is a server with exact routes beside wildcard, subtree and GET routes.
func routedServer() *shttp.Server {
	s := shttp.NewServer("exact")
	e := func(_ context.Context, p patternReq) (patternReq, error) { return p, nil }
	for _, pattern := range []string{
		"POST /sum", "GET /items", "GET /items/{id}", "POST /items/search", "DELETE /a/b",
		"POST /dir/", "PUT /a/b", "GET /caf%C3%A9",
	} {
		shttp.HandleWith(s, pattern, "M", e, decodePattern, encodePattern)
	}
	return s
}

// TestExactRoutesAnswerAsTheMux sends the same requests to a server that routes exact
// paths itself and to one whose every request goes through the ServeMux (its Mux was
// handed out), and expects the same responses: status, body (with Request.Pattern and
// path values), Allow and Location.
func TestExactRoutesAnswerAsTheMux(t *testing.T) {
	fast := routedServer()
	viaMux := routedServer()
	_ = viaMux.Mux()
	for _, tc := range []struct {
		method, target string
		want           int
		body           string // "" for any
	}{
		{"POST", "/sum", 200, "POST /sum|"},
		{"GET", "/sum", 405, ""},
		{"HEAD", "/items", 200, ""},
		{"GET", "/items", 200, "GET /items|"},
		{"GET", "/items/7", 200, "GET /items/{id}|7"},
		{"POST", "/items/search", 200, "POST /items/search|"},
		{"GET", "/items/search", 200, "GET /items/{id}|search"},
		{"DELETE", "/a/b", 200, "DELETE /a/b|"},
		{"PUT", "/a/b", 200, "PUT /a/b|"},
		{"POST", "/a/b", 405, ""},
		{"DELETE", "/a%2Fb", 404, ""},
		{"DELETE", "/%61/b", 200, "DELETE /a/b|"},
		{"POST", "/sum/", 404, ""},
		{"POST", "//sum", 307, ""},
		{"POST", "/x/../sum", 307, ""},
		{"POST", "/dir", 307, ""},
		{"POST", "/dir/x", 200, "POST /dir/|"},
		{"GET", "/caf%C3%A9", 200, "GET /caf%C3%A9|"},
		{"GET", "/café", 200, ""},
		{"post", "/sum", 405, ""},
		{"POST", "/SUM", 404, ""},
		{"POST", "http://other.example/sum", 200, "POST /sum|"},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			var got [2]*httptest.ResponseRecorder
			for i, s := range []*shttp.Server{fast, viaMux} {
				req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(""))
				req.Header.Set("X-Request-Id", "exact-1") // the same id in both problems
				got[i] = httptest.NewRecorder()
				s.ServeHTTP(got[i], req)
			}
			f, m := got[0], got[1]
			if f.Code != tc.want {
				t.Errorf("status %d, want %d (body %q)", f.Code, tc.want, f.Body)
			}
			if tc.body != "" && f.Body.String() != tc.body {
				t.Errorf("body %q, want %q", f.Body, tc.body)
			}
			if f.Code != m.Code || f.Body.String() != m.Body.String() {
				t.Errorf("exact routing answered %d %q, the ServeMux %d %q", f.Code, f.Body, m.Code, m.Body)
			}
			for _, h := range []string{"Allow", "Location", "Content-Type"} {
				if f.Header().Get(h) != m.Header().Get(h) {
					t.Errorf("%s: exact routing %q, the ServeMux %q", h, f.Header().Get(h), m.Header().Get(h))
				}
			}
		})
	}
}

// TestMuxHandlersWithAHostTakePrecedence checks that a handler registered on Mux with a
// host wins over an exact route, as the ServeMux decides.
func TestMuxHandlersWithAHostTakePrecedence(t *testing.T) {
	s := routedServer()
	s.Mux().HandleFunc("POST api.example/sum", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})
	for _, tc := range []struct {
		host string
		want int
	}{{"api.example", http.StatusTeapot}, {"other.example", http.StatusOK}} {
		req := httptest.NewRequest("POST", "/sum", nil)
		req.Host = tc.host
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("host %s: status %d, want %d", tc.host, rec.Code, tc.want)
		}
	}
}

// TestRoutesWithAHostTakePrecedence checks that a route added with a host wins over an
// exact route without one for that host, as the ServeMux decides, whichever was added
// first.
func TestRoutesWithAHostTakePrecedence(t *testing.T) {
	e := func(_ context.Context, p patternReq) (patternReq, error) { return p, nil }
	for _, order := range [][]string{
		{"POST /sum", "POST api.example/sum"},
		{"POST api.example/sum", "POST /sum"},
	} {
		s := shttp.NewServer("hosts")
		for _, pattern := range order {
			shttp.HandleWith(s, pattern, "M", e, decodePattern, encodePattern)
		}
		for _, tc := range []struct{ host, want string }{
			{"api.example", "POST api.example/sum|"},
			{"other.example", "POST /sum|"},
		} {
			req := httptest.NewRequest("POST", "/sum", strings.NewReader(""))
			req.Host = tc.host
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Body.String() != tc.want {
				t.Errorf("routes %q, host %s: %d %q, want 200 %q", order, tc.host, rec.Code, rec.Body, tc.want)
			}
		}
	}
}
