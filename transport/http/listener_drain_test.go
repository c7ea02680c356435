//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package http

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/run"
)

// drainServer is an http.Server on a ProblemListener over loopback, with TrackConnState,
// stopped with run.HTTPServer's stop, as svckit.App stops its HTTP server. Its handler
// echoes the request body.
type drainServer struct {
	srv  *http.Server
	ln   net.Listener
	stop func(context.Context) error
	// conns receives each server-side connection when it first goes idle; the hook then
	// waits on hold, if set, before the server reads the connection's next request.
	conns chan *problemTCPConn
	hold  chan struct{}
	// begun receives a connection each time a read starts a request on it; waiting
	// each time CloseIdle waits for requests begun on idle connections.
	begun   chan *problemTCPConn
	waiting chan int
	// answered counts the requests the handler answered.
	answered atomic.Int32
}

func newDrainServer(t *testing.T, readHeaderTimeout time.Duration, hold bool) *drainServer {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := ProblemListener(tcp).(*problemListener)
	d := &drainServer{ln: pl, conns: make(chan *problemTCPConn, 16),
		begun: make(chan *problemTCPConn, 16), waiting: make(chan int, 1)}
	pl.onBegin = func(c *problemTCPConn) { d.begun <- c }
	pl.onWait = func(n int) {
		select {
		case d.waiting <- n:
		default:
		}
	}
	if hold {
		d.hold = make(chan struct{})
	}
	var once sync.Once
	d.srv = &http.Server{
		ReadHeaderTimeout: readHeaderTimeout,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			_, _ = w.Write(b)
			d.answered.Add(1)
		}),
		// Run in the connection's goroutine after its state is stored: holding it here
		// is a server goroutine that the scheduler has not run yet.
		ConnState: TrackConnState(func(c net.Conn, st http.ConnState) {
			if st != http.StateIdle {
				return
			}
			first := false
			once.Do(func() { first = true })
			if first {
				d.conns <- c.(*problemTCPConn)
				if d.hold != nil {
					<-d.hold
				}
			}
		}),
	}
	var serve func(context.Context) error
	serve, d.stop = run.HTTPServer(d.srv, d.ln)
	go func() { _ = serve(context.Background()) }()
	t.Cleanup(func() { _ = d.srv.Close() })
	return d
}

// post is a keep-alive POST of body.
func post(body string) string {
	return fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// exchange writes req on c and reads the response.
func exchange(t *testing.T, c net.Conn, br *bufio.Reader, req string) (*http.Response, string, error) {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		return nil, "", err
	}
	return readResponse(br)
}

func readResponse(br *bufio.Reader) (*http.Response, string, error) {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestShutdownAnswersRequestBegun checks that a keep-alive request a client sends as the
// server shuts down is answered, not cut off, when the server sees its connection idle
// and closes it: whether the request still waits in the socket (the server's goroutine has
// not run yet) or the server has read part of it. Once answered, the connection is closed
// (svckit.App's answers during a shutdown also say Connection: close), and stop waits for
// it.
func TestShutdownAnswersRequestBegun(t *testing.T) {
	for _, tt := range []struct {
		name    string
		hold    bool // the server goroutine does not run until Shutdown has returned
		first   string
		rest    string
		explain string
	}{
		{"request waiting in the socket", true, post("second"), "", "the whole request is in the socket buffer"},
		{"request partly read", false, "POST /echo HTTP/1.1\r\nHost: x\r\n", "Content-Length: 6\r\n\r\nsecond", "the server has read the first header lines"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDrainServer(t, 0, tt.hold)
			c, err := net.Dial("tcp", d.ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if resp, body, err := exchange(t, c, br, post("first")); err != nil || resp.StatusCode != 200 || body != "first" {
				t.Fatalf("first request: %v %v %q", resp, err, body)
			}
			sc := <-d.conns
			<-d.begun // the first request's
			if _, err := io.WriteString(c, tt.first); err != nil {
				t.Fatal(err)
			}
			if tt.hold {
				waitReadable(t, sc)
			} else {
				// The server has read what was sent (and waits for the rest of the header).
				if got := recvWithin(t, d.begun, "the server did not read the first header lines"); got != sc {
					t.Fatal("a request began on another connection")
				}
			}

			type result struct {
				err      error
				answered int32 // requests answered when stop returned
			}
			stopped := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := d.stop(ctx)
				stopped <- result{err, d.answered.Load()}
			}()
			// stop closes the listener, then waits on the request begun; without
			// CloseIdle it would not wait, and the request below fails.
			select {
			case n := <-d.waiting:
				if n != 1 {
					t.Errorf("CloseIdle waits for %d requests, want 1", n)
				}
			case r := <-stopped:
				t.Fatalf("stop returned (%v) before the request begun was answered", r.err)
			case <-time.After(10 * time.Second):
				t.Fatal("stop neither waited nor returned")
			}
			if tt.hold {
				close(d.hold)
			}
			if _, err := io.WriteString(c, tt.rest); err != nil {
				t.Fatalf("%s, then the rest: %v", tt.explain, err)
			}
			resp, body, err := readResponse(br)
			if err != nil {
				t.Fatalf("%s when the shutdown began: the request failed: %v", tt.explain, err)
			}
			if resp.StatusCode != 200 || body != "second" {
				t.Errorf("second request: %d %q", resp.StatusCode, body)
			}
			if r := <-stopped; r.err != nil || r.answered != 2 {
				t.Errorf("stop: %v with %d requests answered, want both", r.err, r.answered)
			}
			if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Errorf("the connection stayed open: read %d, %v", n, err)
			}
		})
	}
}

// TestShutdownIdleAndStalled checks the limits of sparing connections: an idle one is
// closed at once, one whose request stalls is spared once and then closed by the
// server's header timeout, and stop closes what is left when its context ends.
func TestShutdownIdleAndStalled(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		d := newDrainServer(t, 0, false)
		c, err := net.Dial("tcp", d.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, _, err := exchange(t, c, br, post("first")); err != nil {
			t.Fatal(err)
		}
		<-d.conns
		start := time.Now()
		if err := d.stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Errorf("the idle connection stayed open: read %d, %v", n, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("stop took %v", d)
		}
	})
	stall := func(t *testing.T, headerTimeout time.Duration) (*drainServer, net.Conn) {
		d := newDrainServer(t, headerTimeout, false)
		c, err := net.Dial("tcp", d.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, _, err := exchange(t, c, bufio.NewReader(c), post("first")); err != nil {
			t.Fatal(err)
		}
		<-d.conns
		<-d.begun // the first request's
		if _, err := io.WriteString(c, "POST /echo HTTP/1.1\r\n"); err != nil {
			t.Fatal(err)
		}
		recvWithin(t, d.begun, "the server did not read the stalled request's first line")
		return d, c
	}
	t.Run("stalled, header timeout", func(t *testing.T) {
		d, c := stall(t, 300*time.Millisecond)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("stop took %v with a header timeout of 300ms", el)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Errorf("read after the timeout: %v", err)
		}
	})
	t.Run("stalled, stop's context ends", func(t *testing.T) {
		d, c := stall(t, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err := d.stop(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("stop: %v, want the deadline", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || isTimeout(err) {
			t.Errorf("the stalled connection stayed open: read %d, %v", n, err)
		}
	})
}

// TestShutdownAnswersNewConnection checks that the first request of a connection accepted
// just before stop began is answered: net/http drops a request it reads once Shutdown has
// begun, so CloseIdle waits a moment for it. A connection that sends nothing is closed
// after that moment, and stop returns.
func TestShutdownAnswersNewConnection(t *testing.T) {
	accepted := func(t *testing.T, d *drainServer) net.Conn {
		c, err := net.Dial("tcp", d.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		pl := d.ln.(*problemListener)
		for len(pl.watch.snapshot(nil)) == 0 { // the server has accepted it
			runtime.Gosched()
		}
		return c
	}
	t.Run("first request during stop", func(t *testing.T) {
		d := newDrainServer(t, 0, false)
		c := accepted(t, d)
		stopped := make(chan error, 1)
		go func() { stopped <- d.stop(context.Background()) }()
		recvWithin(t, d.waiting, "CloseIdle did not wait for the new connection's first request")
		resp, body, err := exchange(t, c, bufio.NewReader(c), post("first"))
		if err != nil {
			t.Fatalf("the first request, sent as the server stopped: %v", err)
		}
		if resp.StatusCode != http.StatusOK || body != "first" {
			t.Errorf("answered %d %q", resp.StatusCode, body)
		}
		if err := recvWithin(t, stopped, "stop did not return"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("nothing sent", func(t *testing.T) {
		d := newDrainServer(t, 0, false)
		c := accepted(t, d)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.stop(ctx); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("stop took %v for a connection that sent nothing", el)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || isTimeout(err) {
			t.Errorf("the silent connection stayed open: read %d, %v", n, err)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// recvWithin receives from ch, failing the test with msg after 10 seconds.
func recvWithin[T any](t *testing.T, ch <-chan T, msg string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
		var zero T
		return zero
	}
}

// waitReadable waits, in the runtime's poller, until c has bytes to read, without
// reading them. The test has written them already. The socket's read deadline (net/http
// leaves one in the past after a response) is lifted meanwhile and then restored, so that
// c's own record of it stays true.
func waitReadable(t *testing.T, c *problemTCPConn) {
	t.Helper()
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.TCPConn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	err = rc.Read(peek)
	if rerr := c.TCPConn.SetReadDeadline(c.applied); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("the request did not reach the server's socket: %v", err)
	}
}
