package http_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	shttp "github.com/svckit/svckit/transport/http"
)

// acceptedPair returns a connection accepted through ProblemListener and the client end
// of it, over loopback TCP.
func acceptedPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pl := shttp.ProblemListener(ln)
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		c, err := pl.Accept()
		accepted <- result{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.c.Close(); client.Close() })
	return r.c, client
}

// TestProblemListenerReadDeadlines checks that the wrapped connection's reads see exactly
// the read deadline last set before or during them, though the socket gets it only when a
// read starts.
func TestProblemListenerReadDeadlines(t *testing.T) {
	past := time.Unix(1, 0)
	for _, tc := range []struct {
		name      string
		deadlines func() []time.Time // set in order before the read
		send      bool               // the client sends a byte before the read
		timeout   bool               // the read fails with a timeout
	}{
		{"past deadline fails the read", func() []time.Time { return []time.Time{past} }, true, true},
		{"past deadline then cleared", func() []time.Time { return []time.Time{past, {}} }, true, false},
		{"future deadline, data arrives", func() []time.Time { return []time.Time{time.Now().Add(time.Minute)} }, true, false},
		{"short deadline, no data", func() []time.Time { return []time.Time{time.Now().Add(20 * time.Millisecond)} }, false, true},
		{"cleared then past", func() []time.Time { return []time.Time{{}, past} }, true, true},
		{"several, the last one counts", func() []time.Time {
			return []time.Time{time.Now().Add(time.Hour), past, time.Now().Add(time.Minute)}
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := acceptedPair(t)
			for _, d := range tc.deadlines() {
				if err := srv.SetReadDeadline(d); err != nil {
					t.Fatal(err)
				}
			}
			if tc.send {
				if _, err := cli.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			var b [1]byte
			n, err := srv.Read(b[:])
			if tc.timeout {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read: %d, %v; want a deadline error", n, err)
				}
				return
			}
			if err != nil || n != 1 || b[0] != 'x' {
				t.Fatalf("read: %d %q, %v; want the byte sent", n, b[:n], err)
			}
		})
	}
}

// TestProblemListenerDeadlineDuringRead checks that a read deadline set while a read is
// blocked reaches it at once, as net/http's abort of its background read needs, and that
// SetDeadline sets the write deadline too.
func TestProblemListenerDeadlineDuringRead(t *testing.T) {
	srv, _ := acceptedPair(t)
	done := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := srv.Read(b[:])
		done <- err
	}()
	// The read is blocked (no data ever comes); poll until the deadline set now ends it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := srv.SetReadDeadline(time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read: %v; want a deadline error", err)
			}
			if err := srv.SetDeadline(time.Unix(1, 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write after SetDeadline in the past: %v; want a deadline error", err)
			}
			return
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the deadline set during the read never ended it")
		}
	}
}

// TestProblemListenerRawAccess checks that reads that do not pass through Read — WriteTo,
// and the raw connection from SyscallConn — see the deadline last set.
func TestProblemListenerRawAccess(t *testing.T) {
	t.Run("WriteTo", func(t *testing.T) {
		srv, _ := acceptedPair(t)
		if err := srv.SetReadDeadline(time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.(io.WriterTo).WriteTo(io.Discard); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("WriteTo: %v; want a deadline error", err)
		}
	})
	t.Run("SyscallConn", func(t *testing.T) {
		srv, cli := acceptedPair(t)
		if err := srv.SetReadDeadline(time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		rc, err := srv.(syscall.Conn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		// A raw read fails on the deadline set before SyscallConn, and succeeds once a
		// deadline cleared after it has reached the socket.
		wait := func(uintptr) bool { return false }
		if err := rc.Read(wait); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("raw read: %v; want a deadline error", err)
		}
		if _, err := cli.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := srv.SetReadDeadline(time.Time{}); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), b[:])
			return rerr != syscall.EAGAIN
		}); err != nil || rerr != nil || n != 1 || b[0] != 'x' {
			t.Fatalf("raw read after the deadline was cleared: %v, %v, %d bytes %q", err, rerr, n, b[:])
		}
	})
}

// TestProblemListenerServerTimeouts checks that net/http's timeouts still hold through the
// wrapped connection: a header slower than ReadHeaderTimeout and a body slower than
// ReadTimeout end the connection, an idle keep-alive connection is closed after
// IdleTimeout, and requests in time are served on one connection.
func TestProblemListenerServerTimeouts(t *testing.T) {
	srv := &http.Server{
		Handler:           sumServer(),
		ReadHeaderTimeout: 150 * time.Millisecond,
		ReadTimeout:       300 * time.Millisecond,
		IdleTimeout:       200 * time.Millisecond,
	}
	addr := serveRaw(t, srv, shttp.ProblemListener)
	const req = "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"b\":2}"
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // the test's own bound
		return c, bufio.NewReader(c)
	}
	// closed reads until the server closes the connection and reports how long it took.
	closed := func(t *testing.T, br *bufio.Reader, start time.Time) time.Duration {
		t.Helper()
		if _, err := io.Copy(io.Discard, br); err != nil {
			t.Fatalf("waiting for the server to close: %v", err)
		}
		return time.Since(start)
	}
	t.Run("keep-alive requests in time", func(t *testing.T) {
		c, br := dial(t)
		for i := range 3 {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"v":3}` {
				t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
			}
		}
	})
	t.Run("slow header", func(t *testing.T) {
		c, br := dial(t)
		start := time.Now()
		if _, err := io.WriteString(c, "POST /sum HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		if d := closed(t, br, start); d < 100*time.Millisecond || d > 5*time.Second {
			t.Fatalf("closed after %v; want about ReadHeaderTimeout (150ms)", d)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		c, br := dial(t)
		start := time.Now()
		if _, err := io.WriteString(c, req[:len(req)-5]); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d; want 408 for a body slower than ReadTimeout", resp.StatusCode)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Fatalf("answered after %v; want about ReadTimeout (300ms)", d)
		}
	})
	t.Run("idle", func(t *testing.T) {
		c, br := dial(t)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		start := time.Now()
		if d := closed(t, br, start); d < 150*time.Millisecond || d > 5*time.Second {
			t.Fatalf("idle connection closed after %v; want about IdleTimeout (200ms)", d)
		}
	})
}

// TestProblemListenerFarDeadlines checks read deadlines further away than the socket is
// told at once: a blocked read ends at its deadline (through the listener's watch), not
// before; data that comes in time is read; a far deadline set after a past one lets the
// read wait; and a far deadline set during a blocked read ends it.
func TestProblemListenerFarDeadlines(t *testing.T) {
	const far = 700 * time.Millisecond
	for _, tc := range []struct {
		name    string
		setup   func(srv net.Conn) time.Time // sets deadlines before the read; returns the one that counts
		during  bool                         // the deadline is set while the read is blocked
		send    bool                         // the client sends a byte once the read is blocked
		timeout bool
	}{
		{"far deadline ends a blocked read", func(srv net.Conn) time.Time {
			d := time.Now().Add(far)
			_ = srv.SetReadDeadline(d)
			return d
		}, false, false, true},
		{"past then far: the read waits for it", func(srv net.Conn) time.Time {
			_ = srv.SetReadDeadline(time.Unix(1, 0))
			d := time.Now().Add(far)
			_ = srv.SetReadDeadline(d)
			return d
		}, false, false, true},
		{"near then far: the far one counts", func(srv net.Conn) time.Time {
			_ = srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			var b [1]byte
			_, _ = srv.Read(b[:]) // applies the near deadline to the socket; times out
			d := time.Now().Add(far)
			_ = srv.SetReadDeadline(d)
			return d
		}, false, false, true},
		{"data before a far deadline", func(srv net.Conn) time.Time {
			d := time.Now().Add(far)
			_ = srv.SetReadDeadline(d)
			return d
		}, false, true, false},
		{"far deadline set during the read", func(srv net.Conn) time.Time { return time.Time{} }, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := acceptedPair(t)
			want := tc.setup(srv)
			done := make(chan error, 1)
			go func() {
				var b [1]byte
				_, err := srv.Read(b[:])
				done <- err
			}()
			if tc.during || tc.send {
				waitReading(t, srv)
			}
			if tc.send {
				if _, err := cli.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if tc.during {
				want = time.Now().Add(far)
				if err := srv.SetReadDeadline(want); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-done:
				ended := time.Now()
				if !tc.timeout {
					if err != nil {
						t.Fatalf("read: %v; want the byte sent", err)
					}
					return
				}
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read: %v; want a deadline error", err)
				}
				if ended.Before(want) {
					t.Fatalf("the read ended %v before its deadline", want.Sub(ended))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the far deadline never ended the read")
			}
		})
	}
}

// waitReading polls until a read is in progress on c, a connection from ProblemListener.
func waitReading(t *testing.T, c net.Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for shttp.ReadsInProgress(c) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the read never started")
		}
		runtime.Gosched()
	}
}
