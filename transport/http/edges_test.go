package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

// serveRaw serves h with srv's limits on a loopback listener wrapped by wrap, and returns
// the address.
func serveRaw(t *testing.T, srv *http.Server, wrap func(net.Listener) net.Listener) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(wrap(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func sumServer() *shttp.Server {
	s := shttp.NewServer("testsvc")
	shttp.Handle(s, "POST /sum", "Sum", func(_ context.Context, r sumReq) (sumResp, error) {
		return sumResp{V: r.A + r.B}, nil
	})
	return s
}

// readProblem reads one response from br and decodes its problem+json body.
func readProblem(t *testing.T, br *bufio.Reader) (*http.Response, shttp.Problem, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p shttp.Problem
	if resp.Header.Get("Content-Type") == shttp.ProblemContentType {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("problem body %q: %v", body, err)
		}
	}
	return resp, p, string(body)
}

// TestSlowBodyIs408 trickles a request body to a server with a read timeout: the request
// ends with 408 problem+json once the timeout passes, and the connection is closed.
func TestSlowBodyIs408(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr := serveRaw(t, &http.Server{Handler: sumServer(), ReadTimeout: timeout}, func(ln net.Listener) net.Listener { return ln })
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 50 ms: the body would take 50 s
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	resp, p, body := readProblem(t, br)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || p.Status != 408 || p.Kind != "deadline_exceeded" {
		t.Fatalf("%d %s, want 408 problem+json of kind deadline_exceeded", resp.StatusCode, body)
	}
	if took > timeout+2*time.Second {
		t.Errorf("the answer took %v, the read timeout is %v", took, timeout)
	}
	if !resp.Close {
		t.Error("the 408 does not close the connection")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the connection is still open after the 408")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the server did not close the connection")
	}
}

// TestProblemListener sends requests that net/http refuses before any handler runs, on a
// listener wrapped by ProblemListener: the refusals are problem+json, and everything else
// passes unchanged.
func TestProblemListener(t *testing.T) {
	s := sumServer()
	s.Mux().HandleFunc("GET /plain431", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "431 Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
	})
	addr := serveRaw(t, &http.Server{Handler: s, MaxHeaderBytes: 1 << 10}, shttp.ProblemListener)
	tests := []struct {
		name, request string
		status        int
		ctype, kind   string
		detail        string
	}{
		{"header section over the limit", "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 8<<10) + "\r\n\r\n",
			431, shttp.ProblemContentType, "invalid_argument", "request header fields too large"},
		{"malformed Host", "GET /x HTTP/1.1\r\nHost: a b\r\n\r\n",
			400, shttp.ProblemContentType, "invalid_argument", "malformed Host header"},
		{"malformed request line", "GARBAGE\r\n\r\n",
			400, shttp.ProblemContentType, "invalid_argument", "bad request"},
		{"unsupported transfer encoding", "POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
			501, shttp.ProblemContentType, "unimplemented", "unsupported transfer encoding"},
		{"normal request", "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"b\":2}",
			200, "application/json", "", ""},
		{"a handler's own plain-text 431", "GET /plain431 HTTP/1.1\r\nHost: x\r\n\r\n",
			431, "text/plain; charset=utf-8", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, tt.request); err != nil {
				t.Fatal(err)
			}
			resp, p, body := readProblem(t, bufio.NewReader(conn))
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != tt.ctype {
				t.Fatalf("%d %s %q, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.ctype)
			}
			if tt.kind == "" {
				return
			}
			if p.Status != tt.status || p.Kind != tt.kind || p.Detail != tt.detail || p.Title != http.StatusText(tt.status) {
				t.Errorf("problem %+v, want status %d, kind %s, detail %q", p, tt.status, tt.kind, tt.detail)
			}
			if !resp.Close || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("headers %v, want Connection: close and nosniff", resp.Header)
			}
		})
	}
}

// TestClientHidesNonProblemBodies calls a server that answers with a body that is not
// problem+json, as a proxy in front of a service does: the error keeps the status's kind
// and a fixed message; the body stays in the cause.
func TestClientHidesNonProblemBodies(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<html>upstream 10.0.0.7:8080 connect() failed (111: Connection refused)</html>")
	}))
	defer hs.Close()
	c, err := shttp.NewClient(hs.URL, "testsvc")
	if err != nil {
		t.Fatal(err)
	}
	_, err = shttp.Call[sumReq, sumResp](c, "POST /sum", "Sum")(context.Background(), sumReq{A: 1})
	var e *svcerr.Error
	if !errors.As(err, &e) || e.Kind != svcerr.Unavailable || e.Message != "Bad Gateway" {
		t.Fatalf("got %#v, want unavailable \"Bad Gateway\"", err)
	}
	if !strings.Contains(err.Error(), "10.0.0.7:8080") {
		t.Errorf("the body is not in the cause, for the log: %v", err)
	}
}

// BenchmarkProblemListener compares a keep-alive loopback request with and without
// ProblemListener around the listener: the wrapper looks at the first line of each write
// and sets read deadlines on the socket only when a read starts. The server has svckit's
// timeouts (header, whole request, idle), which set read deadlines on every request.
func BenchmarkProblemListener(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(net.Listener) net.Listener
	}{
		{"plain", func(ln net.Listener) net.Listener { return ln }},
		{"wrapped", shttp.ProblemListener},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := &http.Server{Handler: sumServer(), ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
			go func() { _ = srv.Serve(tc.wrap(ln)) }()
			defer srv.Close()
			url := "http://" + ln.Addr().String() + "/sum"
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := hc.Post(url, "application/json", strings.NewReader(`{"a":1,"b":2}`))
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
