package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// FixedHTTP sends the same HTTP request on every call, each worker over an HTTP/1.1
// keep-alive connection of its own, and reads the answer on the worker's goroutine
// (http.ReadResponse): none of net/http's Transport, whose connection pool and two
// goroutines per connection cost more CPU per call than the call itself on a busy
// machine. It is what `svckit load` places the shop's orders with: the load generator's
// CPU counts in a benchmark's CPU per order.
//
// A worker dials when it has no connection, and drops it after a transport error, an
// answer with "Connection: close", or a body over the bound. A call whose connection was
// reused and that got no byte of an answer (the server had closed it while idle) is sent
// once more on a new connection, as net/http does for a request it knows was not
// processed.
type FixedHTTP struct {
	u       *url.URL
	req     []byte // the request, written at every call
	tls     *tls.Config
	timeout time.Duration
	conns   []*fixedConn // by worker; each used by its worker only
	dials   atomic.Int64
}

// fixedConn is a worker's connection.
type fixedConn struct {
	c    net.Conn
	lim  budgetReader // c, read within one answer's bounds
	br   *bufio.Reader
	body []byte // the last answer's body, reused
	used bool   // a call was answered on it
}

// NewFixedHTTP prepares r (its Method, default POST, URL, Body and Header; Content-Type
// application/json when there is a body and Header has none) for workers numbered 0 to
// workers-1. cfg, if set, is the TLS configuration of an https URL; timeout bounds each
// call (dial, write and read; 0: 30 s). Close closes the connections.
func NewFixedHTTP(r Request, workers int, cfg *tls.Config, timeout time.Duration) (*FixedHTTP, error) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("loadgen: %q: want an http:// or https:// URL", r.URL)
	}
	if workers < 1 || workers > MaxConcurrency {
		return nil, fmt.Errorf("loadgen: %d workers: want 1 to %d", workers, MaxConcurrency)
	}
	if len(r.Body) > MaxBodyBytes {
		return nil, fmt.Errorf("loadgen: a body of %d bytes is over the bound of %d", len(r.Body), MaxBodyBytes)
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	if method == http.MethodHead || method == http.MethodConnect || !validHeader(method, "") || strings.ContainsAny(method, " \t") {
		return nil, fmt.Errorf("loadgen: method %q: FixedHTTP sends requests whose answers have a body", method)
	}
	hdr := r.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if r.Body != nil && hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}
	if hdr.Get("User-Agent") == "" {
		hdr.Set("User-Agent", "svckit-load")
	}
	hdr.Del("Content-Length")
	hdr.Del("Connection")
	hdr.Del("Transfer-Encoding")
	hdr.Del("Host")
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, u.RequestURI(), u.Host)
	keys := make([]string, 0, len(hdr))
	for k := range hdr {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range hdr[k] {
			if !validHeader(k, v) {
				return nil, fmt.Errorf("loadgen: header %q: a name or value with a line break or control byte", k)
			}
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if r.Body != nil || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		b.WriteString("Content-Length: " + strconv.Itoa(len(r.Body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(r.Body)
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if cfg != nil {
		cfg = cfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
	}
	return &FixedHTTP{u: u, req: b.Bytes(), tls: cfg, timeout: timeout, conns: make([]*fixedConn, workers)}, nil
}

// validHeader reports whether a header line can be written as it is.
func validHeader(k, v string) bool {
	for _, s := range []string{k, v} {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
	}
	return k != "" && !strings.ContainsAny(k, " :")
}

// Dials returns the number of connections dialed so far.
func (f *FixedHTTP) Dials() int64 { return f.dials.Load() }

// Call is the CallFunc: it sends the request for worker and returns the status (0 with
// the error when there was no answer) and up to MaxResponseBytes of the body, which stays
// valid until the worker's next call.
func (f *FixedHTTP) Call(ctx context.Context, worker int, _ int64) (int, []byte, error) {
	if worker < 0 || worker >= len(f.conns) {
		return 0, nil, fmt.Errorf("loadgen: worker %d of %d", worker, len(f.conns))
	}
	for attempt := 0; ; attempt++ {
		status, body, retry, err := f.try(ctx, worker)
		if !retry || attempt > 0 || ctx.Err() != nil {
			return status, body, err
		}
	}
}

// try makes one attempt; retry tells that the connection was an idle one the server had
// closed, so the request was not processed.
func (f *FixedHTTP) try(ctx context.Context, worker int) (status int, body []byte, retry bool, err error) {
	fc := f.conns[worker]
	if fc == nil || fc.c == nil {
		if fc == nil {
			fc = &fixedConn{}
			f.conns[worker] = fc
		}
		if err := f.dial(ctx, fc); err != nil {
			return 0, nil, false, err
		}
	}
	reused := fc.used
	_ = fc.c.SetDeadline(time.Now().Add(f.timeout))
	// ctx's end unblocks the call: ctx.Err is set by then, so the call returns it.
	stop := context.AfterFunc(ctx, func() { _ = fc.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) (int, []byte, bool, error) {
		fc.close()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return 0, nil, false, err
	}
	if _, err := fc.c.Write(f.req); err != nil {
		if reused && ctx.Err() == nil {
			fc.close()
			return 0, nil, true, err
		}
		return fail(err)
	}
	fc.lim.n = MaxResponseHeaderBytes
	if _, err := fc.br.Peek(1); err != nil { // no byte of an answer
		if reused && ctx.Err() == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			fc.close()
			return 0, nil, true, err
		}
		return fail(err)
	}
	resp, err := http.ReadResponse(fc.br, nil)
	if err != nil {
		if errors.Is(err, errOverBudget) {
			err = fmt.Errorf("loadgen: an answer's status line and headers over %d bytes", MaxResponseHeaderBytes)
		}
		return fail(err)
	}
	// The body: what is kept, what is discarded after it, and its framing.
	fc.lim.n = MaxResponseBytes + 16<<20 + 64<<10
	b := fc.body[:0]
	b, err = readAtMost(b, resp.Body, MaxResponseBytes)
	if err == nil {
		var n int64
		n, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20))
		if err == nil && n == 16<<20 {
			err = errors.New("loadgen: an answer over 17 MiB")
		}
	}
	_ = resp.Body.Close()
	if err != nil {
		return fail(err)
	}
	fc.body, fc.used = b, true
	if resp.Close {
		fc.close()
	}
	return resp.StatusCode, b, false, nil
}

// readAtMost appends up to limit bytes of r to b.
func readAtMost(b []byte, r io.Reader, limit int) ([]byte, error) {
	for len(b) < limit {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
		n, err := r.Read(b[len(b):min(cap(b), limit)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// dial connects fc.
func (f *FixedHTTP) dial(ctx context.Context, fc *fixedConn) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	host := f.u.Host
	if f.u.Port() == "" {
		port := "80"
		if f.u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(f.u.Hostname(), port)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	f.dials.Add(1)
	if f.u.Scheme == "https" {
		tc := tls.Client(c, f.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return err
		}
		c = tc
	}
	fc.c, fc.used = c, false
	fc.lim = budgetReader{r: c}
	if fc.br == nil {
		fc.br = bufio.NewReaderSize(&fc.lim, 16<<10)
	} else {
		fc.br.Reset(&fc.lim)
	}
	return nil
}

// close drops fc's connection.
func (fc *fixedConn) close() {
	if fc.c != nil {
		_ = fc.c.Close()
		fc.c = nil
	}
}

// Close closes every worker's connection; call it once the run is over.
func (f *FixedHTTP) Close() {
	for _, fc := range f.conns {
		if fc != nil {
			fc.close()
		}
	}
}

// MaxResponseHeaderBytes bounds an answer's status line and headers, as net/http's
// Transport does with its MaxResponseHeaderBytes: a server that sends headers without
// end fails the call instead of growing the generator's memory.
const MaxResponseHeaderBytes = 1 << 20

// errOverBudget is budgetReader's error once its budget is spent.
var errOverBudget = errors.New("loadgen: answer over its bound")

// budgetReader reads from r at most n bytes before it is given more: the connection
// under a worker's buffered reader, given one answer's bounds at a time.
type budgetReader struct {
	r io.Reader
	n int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, errOverBudget
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	return n, err
}
