package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// ErrShutdown is the error of an export after [Exporter.Shutdown], and the cause of
// the cancellation of exports that Shutdown interrupts.
var ErrShutdown = errors.New("otlp: exporter is shut down")

// userAgent is the User-Agent of export requests; a header from the configuration
// replaces it.
const userAgent = "svckit-otlp-exporter"

// freeEncoders is how many idle encoders (with their buffers) an Exporter keeps.
const freeEncoders = 4

// Exporter is an OpenTelemetry SDK span exporter that sends spans to an OTLP endpoint
// as protobuf, over HTTP ([NewHTTPExporter]) or gRPC ([NewGRPCExporter]). It encodes the
// spans straight from [sdktrace.ReadOnlySpan] into the wire format, in a buffer reused
// across exports. It is safe for concurrent use.
type Exporter struct {
	url       string // the endpoint, as errors name it
	header    http.Header
	client    *http.Client
	transport *http.Transport // the transport the exporter made, if it did
	grpc      *grpcSender     // set for a gRPC exporter
	timeout   time.Duration
	gzip      bool
	retry     RetryConfig
	free      chan *encoder // idle encoders

	mu       sync.Mutex
	closed   bool
	inflight int
	idle     chan struct{} // closed when the last in-flight export ends after Shutdown

	stopped context.Context // cancelled by Shutdown, to interrupt exports
	stop    context.CancelCauseFunc
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)

// NewHTTPExporter returns an exporter configured by opts and, like otlptracehttp, by
// the standard environment variables (a TRACES_ variant takes precedence over the
// general one, and options over both):
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT: base URL; /v1/traces is appended to its path.
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the URL, used as is. The default is
//     [DefaultEndpointURL].
//   - OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TRACES_HEADERS: comma-separated
//     key=value pairs with URL-encoded values.
//   - OTEL_EXPORTER_OTLP_TIMEOUT, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: the bound of each
//     HTTP attempt in milliseconds; 10000 by default.
//   - OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: "gzip" or
//     "none" (the default).
//   - OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
//     OTEL_EXPORTER_OTLP_CLIENT_KEY and their TRACES_ variants: PEM files of the CA to
//     trust and of the client certificate and key to present.
//
// An invalid value is an error naming the variable. ctx is not used after the call.
func NewHTTPExporter(ctx context.Context, opts ...Option) (*Exporter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := newConfig(opts, false)
	if err != nil {
		return nil, err
	}
	e := &Exporter{
		url:     cfg.endpoint.String(),
		header:  make(http.Header),
		client:  cfg.client,
		timeout: cfg.timeout,
		gzip:    cfg.gzip,
		retry:   cfg.retry,
		free:    make(chan *encoder, freeEncoders),
	}
	e.header.Set("User-Agent", userAgent)
	for k, v := range cfg.headers {
		e.header.Set(k, v)
	}
	e.header.Set("Content-Type", "application/x-protobuf")
	if cfg.gzip {
		e.header.Set("Content-Encoding", "gzip")
	}
	if e.client == nil {
		e.transport = newTransport()
		e.transport.TLSClientConfig = cfg.tls
		e.client = &http.Client{Transport: e.transport}
	}
	e.stopped, e.stop = context.WithCancelCause(context.Background())
	return e, nil
}

// newTransport returns a transport with the settings of http.DefaultTransport (as
// otlptracehttp does, without sharing or trusting the default one).
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

// ExportSpans posts spans to the endpoint in one ExportTraceServiceRequest, grouped by
// resource and instrumentation scope, and retries as the [RetryConfig] says. It returns
// [ErrShutdown] after Shutdown, and an error if the collector reports a partial success.
func (e *Exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return e.export(ctx, nil)
	}
	return e.export(ctx, func(enc *encoder) int { return enc.encode(spans) })
}

// exportLean posts the spans of a [TracerProvider] as ExportSpans does.
func (e *Exporter) exportLean(ctx context.Context, res *resource.Resource, spans []*span) error {
	if len(spans) == 0 {
		return e.export(ctx, nil)
	}
	return e.export(ctx, func(enc *encoder) int { return enc.encodeLean(res, spans) })
}

// export posts the request that encode writes into an encoder (nothing if encode is
// nil or encodes no span).
func (e *Exporter) export(ctx context.Context, encode func(*encoder) int) error {
	if err := e.begin(); err != nil {
		return err
	}
	defer e.end()
	if encode == nil {
		return nil
	}

	var enc *encoder
	select {
	case enc = <-e.free:
	default:
		enc = new(encoder)
	}
	if encode(enc) == 0 {
		e.release(enc)
		return nil
	}
	if len(enc.bytes()) > maxRequestSize {
		e.release(enc)
		return fmt.Errorf("otlp: request of %d bytes exceeds the limit of %d", len(enc.bytes()), maxRequestSize)
	}
	body := enc.bytes()
	if e.gzip && e.grpc == nil { // grpc-go compresses the messages of a gRPC exporter
		var err error
		if body, err = enc.compress(); err != nil {
			e.release(enc)
			return fmt.Errorf("otlp: gzip: %w", err)
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopAfter := context.AfterFunc(e.stopped, func() { cancel(context.Cause(e.stopped)) })
	defer stopAfter()

	err := e.send(ctx, enc, body)
	if enc.open.Load() == 0 {
		// The HTTP transport has closed every request body, so no goroutine of it
		// reads the buffer any more.
		e.release(enc)
	}
	return err
}

// release keeps enc for a later export, unless enough encoders are idle.
func (e *Exporter) release(enc *encoder) {
	select {
	case e.free <- enc:
	default:
	}
}

// Shutdown makes later exports fail with [ErrShutdown], waits until the exports in
// flight end or ctx is done, then interrupts those that remain and closes idle
// connections. It returns ctx's error if ctx ended first.
func (e *Exporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var idle chan struct{}
	if e.inflight > 0 {
		idle = make(chan struct{})
		e.idle = idle
	}
	e.mu.Unlock()

	var err error
	if idle != nil {
		select {
		case <-idle:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	e.stop(ErrShutdown)
	if e.transport != nil {
		e.transport.CloseIdleConnections()
	}
	if e.grpc != nil {
		_ = e.grpc.cc.Close() // an error only if already closed
	}
	return err
}

func (e *Exporter) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrShutdown
	}
	e.inflight++
	return nil
}

func (e *Exporter) end() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inflight--
	if e.inflight == 0 && e.idle != nil {
		close(e.idle)
		e.idle = nil
	}
}

// send posts body, retrying as e.retry says.
func (e *Exporter) send(ctx context.Context, enc *encoder, body []byte) error {
	start := time.Now()
	interval := e.retry.InitialInterval
	attempt := e.post
	if e.grpc != nil {
		attempt = e.invoke
	}
	for n := 1; ; n++ {
		retry, after, err := attempt(ctx, enc, body)
		if err == nil {
			return nil
		}
		if !retry || !e.retry.Enabled {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", context.Cause(ctx), err)
		}
		// The exponential backoff of github.com/cenkalti/backoff, as otlptracehttp
		// uses it: a random wait within ±50% of the interval, which grows by 1.5.
		wait := time.Duration((0.5 + rand.Float64()) * float64(interval)) // #nosec G404 -- jitter
		interval = min(time.Duration(float64(interval)*1.5), e.retry.MaxInterval)
		wait = max(wait, after)
		elapsed := time.Since(start)
		if e.retry.MaxElapsedTime > 0 && elapsed+wait > e.retry.MaxElapsedTime {
			return fmt.Errorf("otlp: gave up after %d attempts in %v: %w", n, elapsed.Round(time.Millisecond), err)
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return fmt.Errorf("otlp: gave up after %d attempts: the next, in %v, would be past the deadline: %w", n, wait.Round(time.Millisecond), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", context.Cause(ctx), err)
		case <-t.C:
		}
	}
}

// post makes one attempt. It reports whether a failure is worth retrying and the wait
// the server asked for with Retry-After.
func (e *Exporter) post(ctx context.Context, enc *encoder, payload []byte) (retry bool, after time.Duration, err error) {
	actx := ctx
	if e.timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, e.url, nil)
	if err != nil {
		return false, 0, fmt.Errorf("otlp: %w", err)
	}
	req.Header = e.header.Clone()
	req.ContentLength = int64(len(payload))
	req.Body = enc.newBody(payload)
	req.GetBody = func() (io.ReadCloser, error) { return enc.newBody(payload), nil }

	resp, err := e.client.Do(req)
	if err != nil {
		// No response: the connection failed or the attempt timed out. Retry unless
		// the export itself is over.
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); cause != ctx.Err() {
				return false, 0, fmt.Errorf("otlp: %w: %w", err, cause)
			}
			return false, 0, fmt.Errorf("otlp: %w", err)
		}
		return true, 0, fmt.Errorf("otlp: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()

	// Read the response, bounded, so that the connection can be reused.
	enc.resp.Reset()
	_, rerr := enc.resp.ReadFrom(io.LimitReader(resp.Body, maxResponseSize))

	switch code := resp.StatusCode; {
	case code >= 200 && code <= 299:
		if rerr != nil {
			return false, 0, nil // the spans were accepted
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf") {
			return false, 0, partialSuccess(enc.resp.Bytes())
		}
		return false, 0, nil
	case code == http.StatusTooManyRequests, code == http.StatusBadGateway,
		code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
		return true, retryAfter(resp.Header.Get("Retry-After")), e.statusErr(resp, enc.resp.Bytes())
	default:
		return false, 0, e.statusErr(resp, enc.resp.Bytes())
	}
}

// maxSnippet is how much of an error response's body goes into the error.
const maxSnippet = 512

// statusErr is the error for a non-2xx response.
func (e *Exporter) statusErr(resp *http.Response, body []byte) error {
	return fmt.Errorf("otlp: POST %s: %s: %s", e.url, resp.Status, oneLine(string(body), "(empty body)"))
}

// oneLine is at most maxSnippet bytes of a message from the collector, on one line, or
// empty if the message is blank.
func oneLine(msg, empty string) string {
	snippet := strings.TrimSpace(msg[:min(len(msg), maxSnippet)])
	if len(msg) > maxSnippet {
		snippet += "…"
	}
	snippet = strings.Join(strings.Fields(snippet), " ") // keep the error on one line
	if snippet == "" {
		snippet = empty
	}
	return snippet
}

// retryAfter parses a Retry-After header: seconds or an HTTP date. It returns 0 if v is
// empty or invalid.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		if s > int64(1<<63-1)/int64(time.Second) {
			return 1<<63 - 1
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// partialSuccess decodes an ExportTraceServiceResponse and returns an error if it
// reports rejected spans or an error message.
func partialSuccess(b []byte) error {
	var (
		rejected int64
		msg      string
	)
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType { // partial_success
			return nil
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
			switch {
			case num == 1 && typ == protowire.VarintType: // rejected_spans
				rejected = int64(x) // #nosec G115 -- an int64 field
			case num == 2 && typ == protowire.BytesType: // error_message
				msg = string(v)
			}
			return nil
		})
	})
	if err != nil {
		return nil // not a response we understand; the request was accepted
	}
	if rejected == 0 && msg == "" {
		return nil
	}
	return fmt.Errorf("otlp: partial success: %d spans rejected: %s", rejected, msg)
}

// eachField calls f with each field of the protobuf message b: its number, type, bytes
// (for length-delimited fields) and value (for varints).
func eachField(b []byte, f func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// reqBody is a request body over an encoder's buffer. The encoder counts the bodies the
// HTTP transport has not closed yet, since the transport may still read one after the
// response has arrived; the buffer is reused only when none is open.
type reqBody struct {
	r      bytes.Reader
	closed atomic.Bool
	open   *atomic.Int32
}

func (b *reqBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *reqBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.open.Add(-1)
	}
	return nil
}

// newBody returns a body reading payload and counts it as open.
func (e *encoder) newBody(payload []byte) *reqBody {
	b := &reqBody{open: &e.open}
	b.r.Reset(payload)
	e.open.Add(1)
	return b
}

// compress gzips the encoded request into e.zbuf and returns the result.
func (e *encoder) compress() ([]byte, error) {
	e.zbuf.Reset()
	if e.gz == nil {
		e.gz = gzip.NewWriter(&e.zbuf)
	} else {
		e.gz.Reset(&e.zbuf)
	}
	if _, err := e.gz.Write(e.bytes()); err != nil {
		return nil, err
	}
	if err := e.gz.Close(); err != nil {
		return nil, err
	}
	return e.zbuf.Bytes(), nil
}
