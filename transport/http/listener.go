package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/svckit/svckit/svcerr"
)

// ProblemListener wraps ln, a plaintext listener that an http.Server serves, so that the
// refusals net/http writes by itself before any handler runs leave as
// application/problem+json like every other error: 431 for a header section larger than
// http.Server.MaxHeaderBytes, 400 for a malformed request line or Host header, 501 for an
// unsupported Transfer-Encoding. net/http writes each of them in plain text, in one write
// straight to the connection, in a fixed shape: "HTTP/1.1 <status>" followed at once by
// its error headers (Content-Type: text/plain, Connection: close) and no Date. A wrapped
// connection recognises that shape and writes the same status as problem+json instead;
// every other write passes unchanged, after a look at its first line.
//
// It is for plaintext HTTP/1 only. Under TLS net/http needs the *tls.Conn itself and the
// bytes are encrypted by then, so a TLS listener is served unwrapped and its refusals stay
// plain text; so do HTTP/2's.
//
// A wrapped TCP connection also sets its read deadline on the socket only when a read
// starts (at once while one is in progress): net/http's header, body and idle timeouts
// set it several times per keep-alive request but read the socket about twice, and each
// deadline the socket gets is a runtime timer update and two clock reads. A deadline
// more than 300ms away is left to a watch that the listener's connections share, which
// gives it to the socket of a connection that is reading once it is nearer (it looks
// every 100ms), so that a keep-alive request costs no timer at all: a read never ends
// before the deadline last set, and ends at it unless the process is starved of CPU for
// longer than the watch's margin.
//
// The listener is also an IdleCloser of package github.com/svckit/svckit/run, which
// run.HTTPServer uses to stop without cutting off a keep-alive request: see CloseIdle.
func ProblemListener(ln net.Listener) net.Listener {
	return &problemListener{Listener: ln, watch: &deadlineWatch{conns: make(map[*problemTCPConn]struct{})}}
}

// idlePoll is how often CloseIdle looks at the connections while a request has begun on
// an idle one.
const idlePoll = 2 * time.Millisecond

// newConnGrace is how long CloseIdle waits for the first request of a connection accepted
// just before the listener closed: a client sends it right after connecting, and
// net/http would drop it unanswered once Shutdown has begun. A connection that has sent
// nothing for longer is closed.
const newConnGrace = 500 * time.Millisecond

// CloseIdle closes the listener's HTTP/1 connections that are idle between two requests,
// unless the next request has begun on one: its bytes already read by the server, or
// waiting in the socket because the server's goroutine has not run yet. It waits until
// those have been answered (and, answered with "Connection: close", closed by the server)
// or until ctx ends. Call it after closing the listener and before http.Server.Shutdown:
// Shutdown closes every idle connection at once, and a request that the server reads
// once Shutdown has begun is dropped unanswered, so that a client that sent its next
// request as the shutdown began would see it fail — Go's client, for one, does not
// retry a POST. A connection accepted less than newConnGrace (500ms) ago that has sent
// nothing yet is waited for too: its first request would meet the same fate; one that
// has sent nothing for longer is closed. What is left is the moment between looking at
// a socket and closing it.
// HTTP/2 connections are left to Shutdown, which sends them GOAWAY. The server's
// ConnState must be [TrackConnState]; without it no connection counts as idle.
func (l *problemListener) CloseIdle(ctx context.Context) error {
	var conns []*problemTCPConn
	for {
		conns = l.watch.snapshot(conns[:0])
		begun := 0
		for _, c := range conns {
			st := http.ConnState(c.state.Load())
			if c.h2.Load() || (st != http.StateIdle && st != http.StateNew) {
				continue // Shutdown waits for an active connection, and sends GOAWAY on HTTP/2
			}
			switch {
			case c.begun.Load() || inputPending(c.TCPConn):
				begun++
			case st == http.StateNew && time.Since(c.accepted) < newConnGrace:
				begun++ // just connected: its first request is on its way
			default:
				_ = c.Close()
			}
		}
		if begun == 0 {
			return nil
		}
		if l.onWait != nil {
			l.onWait(begun)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d requests begun on idle connections: %w", begun, ctx.Err())
		case <-time.After(idlePoll):
		}
	}
}

// TrackConnState returns an http.Server ConnState hook that records each connection's
// state for [ProblemListener]'s CloseIdle, then calls next, if any.
func TrackConnState(next func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(c net.Conn, st http.ConnState) {
		if pc, ok := c.(*problemTCPConn); ok {
			pc.state.Store(int32(st))
		}
		if next != nil {
			next(c, st)
		}
	}
}

type problemListener struct {
	net.Listener
	watch  *deadlineWatch
	closed atomic.Bool

	// Tests' hooks, nil otherwise: onBegin runs when a read starts a request on a
	// connection, onWait when CloseIdle waits for requests begun on idle connections.
	onBegin func(*problemTCPConn)
	onWait  func(begun int)
}

// Close closes the listener; closing it again does nothing and reports no error, since
// run.HTTPServer closes it before http.Server.Shutdown does.
func (l *problemListener) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	return l.Listener.Close()
}

// Accept returns the next connection, wrapped. A *net.TCPConn keeps its other methods
// (CloseWrite, ReadFrom for sendfile), which net/http looks for, and its read deadlines
// are applied lazily (see problemTCPConn).
func (l *problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		pc := &problemTCPConn{TCPConn: tc, watch: l.watch, ln: l, accepted: time.Now()}
		l.watch.add(pc)
		return pc, nil
	}
	return problemConn{c}, nil
}

// Read deadlines further than farDeadline from the watch's clock are not given to the
// socket; the watch looks at the reading connections every watchTick and gives each its
// deadline once it is nearer. The margin between the two covers the watch's clock being a
// tick behind and the next tick.
const (
	watchTick   = 100 * time.Millisecond
	farDeadline = 3 * watchTick
)

// deadlineWatch gives far read deadlines to the sockets of a listener's connections when
// they come near (see problemTCPConn.applyLocked). Its goroutine runs while connections
// are open, and ends within a tick of the last one closing.
type deadlineWatch struct {
	now atomic.Int64 // the watch's clock (Unix nanoseconds), at most a tick behind

	mu      sync.Mutex
	conns   map[*problemTCPConn]struct{}
	running bool
}

func (w *deadlineWatch) add(c *problemTCPConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conns[c] = struct{}{}
	if !w.running {
		w.running = true
		w.now.Store(time.Now().UnixNano())
		go w.loop()
	}
}

// snapshot appends the open connections to conns.
func (w *deadlineWatch) snapshot(conns []*problemTCPConn) []*problemTCPConn {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.conns {
		conns = append(conns, c)
	}
	return conns
}

func (w *deadlineWatch) remove(c *problemTCPConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.conns, c)
}

// loop advances the clock every tick and brings the deadlines of the connections that
// are reading up to date, until no connection is left.
func (w *deadlineWatch) loop() {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	var reading []*problemTCPConn
	for range t.C {
		w.now.Store(time.Now().UnixNano())
		w.mu.Lock()
		if len(w.conns) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		for c := range w.conns {
			if c.reading.Load() > 0 {
				reading = append(reading, c)
			}
		}
		w.mu.Unlock()
		for i, c := range reading {
			c.mu.Lock()
			_ = c.applyLocked() // an error (a closed connection) is the read's to report
			c.mu.Unlock()
			reading[i] = nil
		}
		reading = reading[:0]
	}
}

// problemTCPConn is a TCP connection whose refusals are rewritten (Write) and whose read
// deadline reaches the socket only when it can matter: when a read starts, or at once
// while a read is in progress. net/http sets the read deadline up to six times per
// keep-alive request (idle, header and whole-request timeouts, and around the background
// read that watches for the client going away) while reading the socket only about twice
// — the next request is usually in its buffer whole — and each deadline set on the socket
// costs a runtime timer update. A read always runs under the deadline last set before it
// or during it, as it would unwrapped — a deadline more than farDeadline away reaches the
// socket through the listener's deadlineWatch as it comes near, so a read never ends
// before it; once raw access is handed out (SyscallConn, File), every deadline is applied
// at once.
type problemTCPConn struct {
	*net.TCPConn
	watch *deadlineWatch
	ln    *problemListener
	// accepted is when the listener accepted it: CloseIdle waits a moment for a new
	// connection's first request.
	accepted time.Time

	reading atomic.Int32 // reads in progress: counted before a read takes mu, so a deadline set later sees it

	state atomic.Int32 // the http.ConnState TrackConnState recorded
	begun atomic.Bool  // bytes were read since the last write: a request has begun
	h2    atomic.Bool  // the connection began with HTTP/2's preface
	read  atomic.Bool  // a read has returned bytes

	mu      sync.Mutex
	pending time.Time // the read deadline last set
	applied time.Time // the read deadline the socket has
	eager   bool      // apply every read deadline at once
}

func (c *problemTCPConn) Write(p []byte) (int, error) {
	if c.begun.Load() {
		c.begun.Store(false)
	}
	return writeRefusal(c.TCPConn, p)
}

// Read reads from the connection under the read deadline last set.
func (c *problemTCPConn) Read(p []byte) (int, error) {
	c.beginRead()
	n, err := c.TCPConn.Read(p)
	c.endRead()
	if n > 0 && !c.begun.Load() {
		c.begun.Store(true)
		if !c.read.Load() {
			c.read.Store(true)
			c.h2.Store(bytes.HasPrefix(p[:n], []byte("PRI ")))
		}
		if c.ln.onBegin != nil {
			c.ln.onBegin(c)
		}
	}
	return n, err
}

// WriteTo copies the connection's data to w (splice on Linux) under the read deadline last
// set, like Read.
func (c *problemTCPConn) WriteTo(w io.Writer) (int64, error) {
	c.beginRead()
	n, err := c.TCPConn.WriteTo(w)
	c.endRead()
	return n, err
}

// SetReadDeadline records t, and sets it on the socket now if a read is in progress;
// otherwise the next read does.
func (c *problemTCPConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = t
	if c.reading.Load() > 0 || c.eager {
		return c.applyLocked()
	}
	return nil
}

// SetDeadline sets the write deadline at once and the read deadline as SetReadDeadline does.
func (c *problemTCPConn) SetDeadline(t time.Time) error {
	if err := c.TCPConn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// SyscallConn returns the raw connection; from then on read deadlines are set at once,
// since reads through it do not pass here.
func (c *problemTCPConn) SyscallConn() (syscall.RawConn, error) {
	c.goEager()
	return c.TCPConn.SyscallConn()
}

// File returns a copy of the socket's file; from then on read deadlines are set at once.
func (c *problemTCPConn) File() (*os.File, error) {
	c.goEager()
	return c.TCPConn.File()
}

func (c *problemTCPConn) goEager() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.eager = true
	_ = c.applyLocked()
}

func (c *problemTCPConn) beginRead() {
	c.reading.Add(1)
	c.mu.Lock()
	// An error here (a closed connection) is the read's to report.
	_ = c.applyLocked()
	c.mu.Unlock()
}

// endRead needs no lock: a deadline set while the count still includes a finished read
// is applied at once, which is only earlier than needed.
func (c *problemTCPConn) endRead() { c.reading.Add(-1) }

// applyLocked sets the pending read deadline on the socket unless it has it already. A
// far deadline is left to the watch: the socket keeps the deadline it has unless that one
// is earlier, which is cleared (no timer, no clock read), so that no read ends before the
// deadline last set.
func (c *problemTCPConn) applyLocked() error {
	p := c.pending
	if !c.eager && !p.IsZero() && p.UnixNano() > c.watch.now.Load()+int64(farDeadline) {
		if c.applied.IsZero() || !c.applied.Before(p) {
			return nil
		}
		p = time.Time{}
	}
	if p.Equal(c.applied) {
		return nil
	}
	if err := c.TCPConn.SetReadDeadline(p); err != nil {
		return err
	}
	c.applied = p
	return nil
}

// Close closes the connection and takes it off the deadline watch.
func (c *problemTCPConn) Close() error {
	c.watch.remove(c)
	return c.TCPConn.Close()
}

type problemConn struct{ net.Conn }

func (c problemConn) Write(p []byte) (int, error) { return writeRefusal(c.Conn, p) }

// CloseWrite shuts down the writing side of the connection when it can, as net/http does
// after a refusal.
func (c problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// refusalHeaders are the headers net/http's own refusals carry, right after the status
// line (net/http's errorHeaders).
const refusalHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// writeRefusal writes p to c, or its problem+json form when p is one of net/http's
// refusals. It reports len(p) written when it wrote the replacement in full.
func writeRefusal(c net.Conn, p []byte) (int, error) {
	if len(p) < 9 || string(p[:9]) != "HTTP/1.1 " || len(p) > 4<<10 {
		return c.Write(p)
	}
	eol := bytes.IndexByte(p, '\r')
	if eol < 0 || !bytes.HasPrefix(p[eol:], []byte(refusalHeaders)) {
		return c.Write(p)
	}
	q, ok := refusalProblem(string(p[9:eol]), string(p[eol+len(refusalHeaders):]))
	if !ok {
		return c.Write(p)
	}
	if _, err := c.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// refusalProblem returns the problem+json response for a refusal with the given status
// line ("431 Request Header Fields Too Large", "400 Bad Request: malformed Host header")
// and plain-text body.
func refusalProblem(statusLine, body string) ([]byte, bool) {
	if len(statusLine) < 4 || statusLine[3] != ' ' {
		return nil, false
	}
	code, err := strconv.Atoi(statusLine[:3])
	if err != nil || code < 400 || code > 599 {
		return nil, false
	}
	title := statusText(code)
	detail := strings.TrimPrefix(body, statusLine[:4])
	detail = strings.TrimPrefix(detail, title+": ")
	if detail == title {
		detail = strings.ToLower(detail)
	} else if detail != "" && 'A' <= detail[0] && detail[0] <= 'Z' {
		detail = string(detail[0]+'a'-'A') + detail[1:]
	}
	b, err := json.Marshal(Problem{Type: "about:blank", Title: title, Status: code, Detail: detail,
		Kind: svcerr.KindFromHTTP(code).String()})
	if err != nil {
		return nil, false
	}
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 ")
	out.WriteString(strconv.Itoa(code))
	out.WriteByte(' ')
	out.WriteString(title)
	out.WriteString("\r\nContent-Type: " + ProblemContentType +
		"\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: ")
	out.WriteString(strconv.Itoa(len(b)))
	out.WriteString("\r\n\r\n")
	out.Write(b)
	return out.Bytes(), true
}
