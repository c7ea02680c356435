package http

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"strings"

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
func ProblemListener(ln net.Listener) net.Listener { return problemListener{ln} }

type problemListener struct{ net.Listener }

// Accept returns the next connection, wrapped. A *net.TCPConn keeps its other methods
// (CloseWrite, ReadFrom for sendfile), which net/http looks for.
func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return problemTCPConn{tc}, nil
	}
	return problemConn{c}, nil
}

type problemTCPConn struct{ *net.TCPConn }

func (c problemTCPConn) Write(p []byte) (int, error) { return writeRefusal(c.TCPConn, p) }

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
