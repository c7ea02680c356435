package http

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
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
// deadline the socket gets is a runtime timer update. Every read still runs under the
// deadline last set.
func ProblemListener(ln net.Listener) net.Listener { return problemListener{ln} }

type problemListener struct{ net.Listener }

// Accept returns the next connection, wrapped. A *net.TCPConn keeps its other methods
// (CloseWrite, ReadFrom for sendfile), which net/http looks for, and its read deadlines
// are applied lazily (see problemTCPConn).
func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &problemTCPConn{TCPConn: tc}, nil
	}
	return problemConn{c}, nil
}

// problemTCPConn is a TCP connection whose refusals are rewritten (Write) and whose read
// deadline reaches the socket only when it can matter: when a read starts, or at once
// while a read is in progress. net/http sets the read deadline up to six times per
// keep-alive request (idle, header and whole-request timeouts, and around the background
// read that watches for the client going away) while reading the socket only about twice
// — the next request is usually in its buffer whole — and each deadline set on the socket
// costs a runtime timer update. A read always runs under the deadline last set before it
// or during it, as it would unwrapped; once raw access is handed out (SyscallConn, File),
// every deadline is applied at once.
type problemTCPConn struct {
	*net.TCPConn

	reading atomic.Int32 // reads in progress: counted before a read takes mu, so a deadline set later sees it

	mu      sync.Mutex
	pending time.Time // the read deadline last set
	applied time.Time // the read deadline the socket has
	eager   bool      // apply every read deadline at once
}

func (c *problemTCPConn) Write(p []byte) (int, error) { return writeRefusal(c.TCPConn, p) }

// Read reads from the connection under the read deadline last set.
func (c *problemTCPConn) Read(p []byte) (int, error) {
	c.beginRead()
	n, err := c.TCPConn.Read(p)
	c.endRead()
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

// applyLocked sets the pending read deadline on the socket unless it has it already.
func (c *problemTCPConn) applyLocked() error {
	if c.pending.Equal(c.applied) {
		return nil
	}
	if err := c.TCPConn.SetReadDeadline(c.pending); err != nil {
		return err
	}
	c.applied = c.pending
	return nil
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
