package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFixedHTTP: the request arrives as given, answers of every framing are read, the
// connection is kept while the server keeps it, and the body is bounded.
func TestFixedHTTP(t *testing.T) {
	big := strings.Repeat("x", MaxResponseBytes+1000)
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		calls     int
		wantBody  string
		wantLen   int
		wantDials int64
		status    int
	}{
		{"content length, kept alive", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"status":"confirmed"}`)
		}, 5, `{"status":"confirmed"}`, -1, 1, 200},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		}, 3, "part one, part two", -1, 1, 200},
		{"connection close", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, "no")
		}, 3, "no", -1, 3, http.StatusConflict},
		{"a body over the bound is cut and the rest read", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, big)
		}, 2, "", MaxResponseBytes, 1, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var seen atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				seen.Store(fmt.Sprintf("%s %s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"),
					r.Header.Get("Content-Type"), b))
				tc.handler(w, r)
			}))
			defer srv.Close()
			f, err := NewFixedHTTP(Request{URL: srv.URL + "/orders?x=1", Body: []byte(`{"items":[]}`),
				Header: http.Header{"Authorization": {"Bearer t"}}}, 2, nil, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for i := range tc.calls {
				status, body, err := f.Call(context.Background(), 1, int64(i))
				if err != nil || status != tc.status {
					t.Fatalf("call %d: %d, %v", i, status, err)
				}
				if tc.wantLen >= 0 && len(body) != tc.wantLen || tc.wantLen < 0 && string(body) != tc.wantBody {
					t.Fatalf("call %d: body of %d bytes %.40q", i, len(body), body)
				}
			}
			if got := seen.Load(); got != `POST /orders?x=1 Bearer t application/json {"items":[]}` {
				t.Errorf("the server saw %v", got)
			}
			if d := f.Dials(); d != tc.wantDials {
				t.Errorf("%d dials, want %d", d, tc.wantDials)
			}
		})
	}
}

// TestFixedHTTPIdleClosed: a call on a connection the server closed while idle is sent
// again on a new one, once.
func TestFixedHTTPIdleClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var requests atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // one answer per connection, then it is closed without saying so
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				requests.Add(1)
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	f, err := NewFixedHTTP(Request{URL: "http://" + ln.Addr().String() + "/", Body: []byte("{}")}, 1, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 4 {
		status, body, err := f.Call(context.Background(), 0, int64(i))
		if err != nil || status != 200 || string(body) != "ok" {
			t.Fatalf("call %d: %d %q %v", i, status, body, err)
		}
	}
	if n := requests.Load(); n != 4 {
		t.Errorf("the server answered %d requests, want 4", n)
	}
	if d := f.Dials(); d != 4 {
		t.Errorf("%d dials, want 4", d)
	}
}

// TestFixedHTTPCancel: a call whose context ends returns at once with its error, and the
// worker dials again for the next call.
func TestFixedHTTPCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("slow") != "" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	defer close(release)
	f, err := NewFixedHTTP(Request{URL: srv.URL + "/?slow=1", Body: []byte("{}")}, 1, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = f.Call(ctx, 0, 0)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
	// A timeout of the call's own (-timeout) ends it too.
	g, err := NewFixedHTTP(Request{URL: srv.URL + "/?slow=1", Body: []byte("{}")}, 1, nil, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if status, _, err := g.Call(context.Background(), 0, 0); err == nil || status != 0 {
		t.Fatalf("%d, %v: want a timeout", status, err)
	}
}

// TestFixedHTTPTLS: an https URL is called over TLS with the given configuration.
func TestFixedHTTPTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	defer srv.Close()
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	f, err := NewFixedHTTP(Request{URL: srv.URL + "/", Body: []byte("{}")}, 1, cfg, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 3 {
		if status, body, err := f.Call(context.Background(), 0, int64(i)); err != nil || status != 200 || string(body) != "HTTP/1.1" {
			t.Fatalf("%d %q %v", status, body, err)
		}
	}
	if d := f.Dials(); d != 1 {
		t.Errorf("%d dials, want 1", d)
	}
	// Without the server's CA the handshake fails: no answer.
	g, err := NewFixedHTTP(Request{URL: srv.URL + "/"}, 1, &tls.Config{}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if status, _, err := g.Call(context.Background(), 0, 0); err == nil || status != 0 {
		t.Fatalf("%d, %v: want a handshake error", status, err)
	}
}

// TestNewFixedHTTPRefuses: what cannot be sent as it is is refused up front.
func TestNewFixedHTTPRefuses(t *testing.T) {
	tests := []struct {
		name    string
		r       Request
		workers int
		want    string
	}{
		{"no scheme", Request{URL: "localhost:80/x"}, 1, "want an http"},
		{"ftp", Request{URL: "ftp://localhost/x"}, 1, "want an http"},
		{"no host", Request{URL: "http:///x"}, 1, "want an http"},
		{"no workers", Request{URL: "http://localhost/"}, 0, "workers"},
		{"too many workers", Request{URL: "http://localhost/"}, MaxConcurrency + 1, "workers"},
		{"HEAD", Request{Method: "HEAD", URL: "http://localhost/"}, 1, "method"},
		{"method with a space", Request{Method: "GET X", URL: "http://localhost/"}, 1, "method"},
		{"header with CRLF", Request{URL: "http://localhost/", Header: http.Header{"X": {"a\r\nEvil: 1"}}}, 1, "line break"},
		{"header name with a colon", Request{URL: "http://localhost/", Header: http.Header{"X:Y": {"a"}}}, 1, "line break"},
		{"body too large", Request{URL: "http://localhost/", Body: make([]byte, MaxBodyBytes+1)}, 1, "bound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewFixedHTTP(tc.r, tc.workers, nil, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want an error with %q", err, tc.want)
			}
		})
	}
	f, err := NewFixedHTTP(Request{URL: "http://localhost/"}, 1, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Call(context.Background(), 1, 0); err == nil {
		t.Error("worker 1 of 1: no error")
	}
}

// TestFixedHTTPHeadersBounded: a server that sends headers without end fails the call at
// MaxResponseHeaderBytes, long before the call's timeout, naming the bound.
func TestFixedHTTPHeadersBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endless: ")
		line := []byte(strings.Repeat("a", 64<<10))
		for range 4 * MaxResponseHeaderBytes / len(line) {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
		<-done // keep the connection open: only the bound can end the call
	}()
	f, err := NewFixedHTTP(Request{URL: "http://" + ln.Addr().String() + "/orders", Body: []byte(`{}`)}, 1, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _, err = f.Call(ctx, 0, 0)
	if err == nil || !strings.Contains(err.Error(), "headers over") {
		t.Fatalf("Call = %v; want the header bound's error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the call ended at the test's deadline, not at the bound")
	}
}
