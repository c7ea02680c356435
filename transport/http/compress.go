package http

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/svckit/svckit/svcerr"
)

// GzipMinBytes is the smallest JSON response body that a [Server] compresses with gzip for
// a client whose Accept-Encoding takes it; smaller bodies fit in a packet or two and are
// sent as they are.
const GzipMinBytes = 1024

var (
	gzipReaders = sync.Pool{}
	gzipWriters = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed) // BestSpeed is a valid level
		return w
	}}
)

// countingReader counts the bytes read from r and keeps r's error, so that a failed read
// of the request body is told apart from malformed gzip data.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// readBody reads the request body into buf, decoding its Content-Encoding: none or
// identity, or gzip (x-gzip). Both the body as sent and the decoded body must be within
// limit bytes, so a small body that inflates to gigabytes (a zip bomb) gets 413 after
// limit+1 decoded bytes; a body in another encoding gets 415 with Accept-Encoding: gzip.
func readBody(r *http.Request, buf *bytes.Buffer, limit int64) error {
	ce, encoded := r.Header["Content-Encoding"]
	if !encoded {
		return readAll(r.Body, buf, limit)
	}
	switch contentCoding(ce) {
	case "identity":
		return readAll(r.Body, buf, limit)
	case "gzip":
		return readGzip(r.Body, buf, limit)
	}
	return &statusError{status: http.StatusUnsupportedMediaType, accept: "gzip",
		err: svcerr.Errorf(svcerr.InvalidArgument, "unsupported content encoding %q: send gzip or no encoding", truncate(strings.Join(ce, ", "), 64))}
}

// readAll reads body into buf up to its end, as readPlain does, and closes it. A body
// read to its end and closed is one net/http has nothing left to do with; one left open
// it reads again after the handler, through an io.CopyN to io.Discard (an allocation and
// a pooled 8 KB buffer per request), to find its end before the next request on the
// connection.
func readAll(body io.ReadCloser, buf *bytes.Buffer, limit int64) error {
	if err := readPlain(body, buf, limit); err != nil {
		return err
	}
	_ = body.Close() // after io.EOF: nothing to fail
	return nil
}

// readPlain reads body into buf up to its end; a body longer than limit bytes is a 413
// once one byte more has been read. It reads straight into buf's free space, as
// bytes.Buffer.ReadFrom does, bounded by hand: an io.LimitReader would be an allocation
// per request.
func readPlain(body io.Reader, buf *bytes.Buffer, limit int64) error {
	for {
		if buf.Available() < bytes.MinRead {
			buf.Grow(bytes.MinRead)
		}
		free := buf.AvailableBuffer()
		free = free[:cap(free)]
		if room := limit + 1 - int64(buf.Len()); int64(len(free)) > room {
			free = free[:room]
		}
		n, err := body.Read(free)
		if n < 0 || n > len(free) {
			return bodyError(errors.New("the body reader returned an invalid count"))
		}
		buf.Write(free[:n])
		if err != nil && err != io.EOF {
			return bodyError(err)
		}
		if int64(buf.Len()) > limit {
			return tooLarge(limit)
		}
		if err == io.EOF {
			return nil
		}
	}
}

func readGzip(body io.Reader, buf *bytes.Buffer, limit int64) error {
	cr := &countingReader{r: io.LimitReader(body, limit+1)}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(cr)
	} else {
		err = zr.Reset(cr)
	}
	if err == nil {
		_, err = buf.ReadFrom(io.LimitReader(zr, limit+1))
		gzipReaders.Put(zr)
	}
	switch {
	case cr.err != nil:
		return bodyError(cr.err)
	case cr.n > limit:
		return tooLarge(limit)
	case int64(buf.Len()) > limit:
		return WithStatus(http.StatusRequestEntityTooLarge, svcerr.Errorf(svcerr.ResourceExhausted,
			"decompressed request body is larger than the limit of %d bytes", limit))
	case err != nil:
		return svcerr.Wrap(svcerr.InvalidArgument, "malformed gzip request body", err)
	}
	return nil
}

// contentCoding returns "identity", "gzip" or the lower-cased coding of a Content-Encoding
// header; a list of several codings is returned as it is, and is not supported.
func contentCoding(v []string) string {
	if len(v) != 1 {
		return strings.Join(v, ",")
	}
	c := strings.ToLower(strings.TrimSpace(v[0]))
	switch c {
	case "", "identity":
		return "identity"
	case "gzip", "x-gzip":
		return "gzip"
	}
	return c
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// acceptsGzip reports whether Accept-Encoding values take gzip: gzip, x-gzip or * with a
// non-zero quality, and gzip not refused with q=0.
func acceptsGzip(values []string) bool {
	star, gz := false, 0 // gz: 0 not named, 1 accepted, -1 refused
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			ok := qualityNonZero(params)
			switch coding {
			case "gzip", "x-gzip":
				if ok {
					gz = 1
				} else if gz == 0 {
					gz = -1
				}
			case "*":
				star = ok
			}
		}
	}
	return gz == 1 || (gz == 0 && star)
}

// qualityNonZero reports whether the parameters of an Accept-Encoding member give it a
// quality above zero (no q parameter: 1).
func qualityNonZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil && q > 0
	}
	return true
}

// gzipBody compresses body for a response to r when it is at least GzipMinBytes long
// and r accepts gzip, and sets the headers that say so. It returns the bytes to send and
// a function that releases the compressed buffer once they are written.
func gzipBody(h http.Header, r *http.Request, body []byte) ([]byte, func()) {
	if len(body) < GzipMinBytes || r == nil || h["Content-Encoding"] != nil {
		return body, nop
	}
	h["Vary"] = append(h["Vary"], "Accept-Encoding")
	ae, ok := r.Header["Accept-Encoding"]
	if !ok || !acceptsGzip(ae) {
		return body, nop
	}
	zbuf := bufPool.Get().(*bytes.Buffer)
	zbuf.Reset()
	release := func() {
		if zbuf.Cap() <= 64<<10 {
			bufPool.Put(zbuf)
		}
	}
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(zbuf)
	_, err := zw.Write(body)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	zw.Reset(io.Discard) // drop the reference to zbuf
	gzipWriters.Put(zw)
	if err != nil || zbuf.Len() >= len(body) {
		release()
		return body, nop
	}
	h["Content-Encoding"] = []string{"gzip"}
	delete(h, "Content-Length")
	return zbuf.Bytes(), release
}

func nop() {}
