package svckit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	shttp "github.com/svckit/svckit/transport/http"
)

// rawResponse sends request on a new connection to addr and reads one response. It
// reports whether the server closed the connection after it.
func rawResponse(t *testing.T, addr, request string) (*http.Response, shttp.Problem, bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p shttp.Problem
	if resp.Header.Get("Content-Type") == shttp.ProblemContentType {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("problem %q: %v", body, err)
		}
	}
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = br.ReadByte()
	return resp, p, err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestSlowBodiesAreCut trickles request bodies into the App's HTTP listener from several
// connections at once: each ends with 408 problem+json within the read timeout (by default
// the request timeout) and its connection is closed.
func TestSlowBodiesAreCut(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		limit time.Duration
	}{
		{"the request timeout", []string{"-request-timeout", "500ms"}, 500 * time.Millisecond},
		{"a read timeout of its own", []string{"-read-timeout", "300ms"}, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := startApp(t, tt.args...)
			addr := strings.TrimPrefix(ta.httpURL, "http://")
			const conns = 8
			var wg sync.WaitGroup
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := trickle(addr, tt.limit); err != nil {
						t.Errorf("connection %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// trickle sends a request whose body arrives one byte every 50 ms and expects a 408
// problem+json before limit plus a margin, then the connection closed.
func trickle(addr string, limit time.Duration) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
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
	_ = conn.SetReadDeadline(time.Now().Add(limit + 5*time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("no response after %v: %w", time.Since(start), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); took > limit+3*time.Second {
		return fmt.Errorf("the answer took %v, the limit is %v", took, limit)
	}
	if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("Content-Type") != shttp.ProblemContentType {
		return fmt.Errorf("%d %s %s, want 408 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// Closed: EOF, or a reset when the server closed while the client was still writing.
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		return fmt.Errorf("the connection is still open after the 408 (%v)", err)
	}
	return nil
}

// TestHeaderSectionLimit sends header sections around the limit (default 64 KiB): over
// it, the answer is 431 problem+json.
func TestHeaderSectionLimit(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		header int
		want   int
	}{
		{"default limit, 32 KiB", nil, 32 << 10, 200},
		{"default limit, 100 KiB", nil, 100 << 10, 431},
		{"default limit, 2 MiB", nil, 2 << 20, 431},
		{"4 KiB limit, 2 KiB", []string{"-max-header-bytes", "4096"}, 2 << 10, 200},
		{"4 KiB limit, 16 KiB", []string{"-max-header-bytes", "4096"}, 16 << 10, 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := startApp(t, tt.args...)
			addr := strings.TrimPrefix(ta.httpURL, "http://")
			req := "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Pad: " +
				strings.Repeat("p", tt.header) + "\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"b\":2}"
			resp, p, closed := rawResponse(t, addr, req)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 431 && (resp.Header.Get("Content-Type") != shttp.ProblemContentType || p.Status != 431 || !closed) {
				t.Errorf("431 is %s %+v, closed %v; want problem+json and the connection closed", resp.Header.Get("Content-Type"), p, closed)
			}
		})
	}
}

// TestPprofSetting checks that the admin listener serves /debug/pprof only with -pprof,
// while health and metrics stay.
func TestPprofSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"off by default", nil, 404},
		{"on with -pprof", []string{"-pprof"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := startApp(t, tt.args...)
			for path, want := range map[string]int{"/debug/pprof/": tt.want, "/debug/pprof/cmdline": tt.want, "/healthz": 200, "/metrics": 200} {
				resp, err := http.Get(ta.adminURL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
				}
				if want == 404 && resp.Header.Get("Content-Type") != shttp.ProblemContentType {
					t.Errorf("GET %s: 404 as %s, want problem+json", path, resp.Header.Get("Content-Type"))
				}
			}
		})
	}
}

// TestPeerErrorsStayInternal calls a peer that cannot answer, in the ways a peer fails in
// production, through a public HTTP endpoint: the caller gets the kind of failure and a
// request id, and no address, transport text, foreign body or internal name.
func TestPeerErrorsStayInternal(t *testing.T) {
	tests := []struct {
		name   string
		peer   func(t *testing.T) string // starts the peer and returns its address
		status int
		detail string
	}{
		// The call waits for a ready instance of the peer (wait-for-ready) until the
		// request times out.
		{"a peer that hangs up", hangUp, http.StatusGatewayTimeout, "deadline exceeded"},
		// A port reused by a plain HTTP server, or a proxy's error page: gRPC reads
		// its 404 as unimplemented and quotes the body.
		{"a plain HTTP server", plainHTTP, http.StatusNotImplemented, "not implemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, err := newApp(t, "front", &svckit.Config{}, nil, "-http-addr", "127.0.0.1:0", "-request-timeout", "2s")
			if err != nil {
				t.Fatal(err)
			}
			cc, err := app.Dial(context.Background(), "adder", tt.peer(t))
			if err != nil {
				t.Fatal(err)
			}
			adder := addsvc.NewClient(addsvc.NewGRPCClient(cc, app.GRPCClientOptions()...))
			shttp.Handle(app.HTTP(), "GET /sum", "Sum", func(ctx context.Context, _ struct{}) (int64, error) {
				return adder.Sum(ctx, 1, 2)
			})
			runApp(t, app)
			addr, err := app.Addr(context.Background(), "http")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get("http://" + addr.String() + "/sum")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p shttp.Problem
			_ = json.Unmarshal(body, &p)
			if resp.StatusCode != tt.status || p.Detail != tt.detail || p.RequestID == "" {
				t.Errorf("%d %s, want %d %q with a request id", resp.StatusCode, body, tt.status, tt.detail)
			}
			for _, f := range []string{"127.0.0.1", "dial tcp", "connection refused", "transport", "rpc error", "adder", "Sum", "HTTP status", "no route"} {
				if strings.Contains(string(body), f) {
					t.Errorf("the response carries %q: %s", f, body)
				}
			}
		})
	}
}

// hangUp listens on a loopback port and closes every connection it accepts at once.
func hangUp(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// plainHTTP serves HTTP/1 and unencrypted HTTP/2 on a loopback port and answers every
// request with a 404 problem that names the route and an address.
func plainHTTP(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"status":404,"detail":"no route for %s %s on %s"}`, r.Method, r.URL.Path, ln.Addr())
	})}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// TestEdgeSettingsValidation checks that the listener limits refuse nonsense with a
// one-line error naming the setting.
func TestEdgeSettingsValidation(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"negative read timeout", []string{"-read-timeout", "-1s"}, "-read-timeout (READ_TIMEOUT)"},
		{"negative idle timeout", []string{"-idle-timeout", "-1s"}, "-idle-timeout (IDLE_TIMEOUT)"},
		{"zero header limit", []string{"-max-header-bytes", "0"}, "-max-header-bytes (MAX_HEADER_BYTES)"},
		{"negative header limit", []string{"-max-header-bytes", "-5"}, "-max-header-bytes (MAX_HEADER_BYTES)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newApp(t, "svc", &svckit.Config{}, nil, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tt.want)
			}
		})
	}
	if _, err := newApp(t, "svc", &svckit.Config{}, map[string]string{"PPROF": "true", "READ_TIMEOUT": "5s"}); err != nil {
		t.Errorf("PPROF=true READ_TIMEOUT=5s: %v", err)
	}
}
