package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// otlpEnv lists the variables either exporter reads; tests clear them so that the
// environment of the test run does not leak into them.
var otlpEnv = []string{
	"ENDPOINT", "HEADERS", "TIMEOUT", "COMPRESSION", "CERTIFICATE", "CLIENT_CERTIFICATE",
	"CLIENT_KEY", "INSECURE", "PROTOCOL",
}

// clearEnv unsets every OTEL_EXPORTER_OTLP_ variable for the test (t.Setenv to "",
// which both exporters treat as unset).
func clearEnv(t testing.TB) {
	t.Helper()
	for _, name := range otlpEnv {
		t.Setenv(envPrefix+name, "")
		t.Setenv(envPrefix+"TRACES_"+name, "")
	}
}

// request is what a collector received in one request.
type request struct {
	header http.Header
	body   []byte // decompressed
	raw    []byte // as sent
}

// collector is an httptest server that records requests and answers with respond (200
// with an empty body if respond is nil).
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	requests []request
	respond  func(w http.ResponseWriter, r *http.Request, n int) // n counts from 1
}

func newCollector(t testing.TB, respond func(w http.ResponseWriter, r *http.Request, n int)) *collector {
	t.Helper()
	c := &collector{respond: respond}
	c.Server = httptest.NewServer(c)
	t.Cleanup(c.Close)
	return c
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body := raw
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			body, err = io.ReadAll(zr)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	c.mu.Lock()
	c.requests = append(c.requests, request{header: r.Header.Clone(), body: body, raw: raw})
	n := len(c.requests)
	c.mu.Unlock()
	if c.respond != nil {
		c.respond(w, r, n)
	}
}

// got returns the requests received so far.
func (c *collector) got() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

// noRetry disables retries of both exporters.
var noRetry = RetryConfig{}

// exportOfficial exports spans with otlptracehttp and returns the request body.
func exportOfficial(t testing.TB, spans []sdktrace.ReadOnlySpan) []byte {
	t.Helper()
	c := newCollector(t, nil)
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(c.URL+"/v1/traces"),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exp.Shutdown(context.Background()) }()
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("official exporter made %d requests, want 1", len(reqs))
	}
	return reqs[0].body
}

// exportOurs exports spans with an Exporter and returns the request body.
func exportOurs(t testing.TB, spans []sdktrace.ReadOnlySpan, opts ...Option) []byte {
	t.Helper()
	c := newCollector(t, nil)
	exp := newTestExporter(t, append([]Option{WithEndpointURL(c.URL + "/v1/traces")}, opts...)...)
	if err := exp.ExportSpans(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("exporter made %d requests, want 1", len(reqs))
	}
	if ct := reqs[0].header.Get("Content-Type"); ct != "application/x-protobuf" {
		t.Errorf("Content-Type = %q", ct)
	}
	return reqs[0].body
}

// newTestExporter returns an exporter that ignores the process environment and does
// not retry, unless opts say otherwise; it is shut down when the test ends.
func newTestExporter(t testing.TB, opts ...Option) *Exporter {
	t.Helper()
	base := []Option{withEnv(func(string) string { return "" }, nil), WithRetry(noRetry)}
	exp, err := NewHTTPExporter(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// decode unmarshals an ExportTraceServiceRequest.
func decode(t testing.TB, body []byte) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	return &req
}

// normalize sorts the resource groups of req, whose order the official exporter (a
// map iteration) does not keep; the order of scopes and spans within is deterministic.
func normalize(t testing.TB, req *coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	keys := make(map[*tracepb.ResourceSpans][]byte, len(req.ResourceSpans))
	for _, rs := range req.ResourceSpans {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(rs.Resource)
		if err != nil {
			t.Fatal(err)
		}
		if rs.Resource != nil {
			b = append([]byte{1}, b...) // a nil resource sorts before an empty one
		}
		keys[rs] = append(b, rs.SchemaUrl...)
	}
	slices.SortStableFunc(req.ResourceSpans, func(a, b *tracepb.ResourceSpans) int {
		return bytes.Compare(keys[a], keys[b])
	})
}

// requireEqual fails the test if the requests differ, printing both.
func requireEqual(t testing.TB, want, got *coltracepb.ExportTraceServiceRequest) {
	t.Helper()
	if !proto.Equal(want, got) {
		w, g := prototext.Format(want), prototext.Format(got)
		t.Fatalf("requests differ\n--- official:\n%s\n--- ours:\n%s", clip(w), clip(g))
	}
}

func clip(s string) string {
	if len(s) > 20000 {
		return s[:20000] + "\n…"
	}
	return s
}

// shutdownInterrupts shuts exp down with a context that ends while the export whose
// result done delivers waits on the collector, and checks that Shutdown reports the
// deadline and the export ErrShutdown.
func shutdownInterrupts(t *testing.T, exp *Exporter, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := exp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want its context's deadline", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrShutdown) {
			t.Fatalf("interrupted export: %v, want ErrShutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the export in flight was not interrupted")
	}
}
