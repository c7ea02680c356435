package otlp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// grpcCall is what a gRPC collector received in one call.
type grpcCall struct {
	md   metadata.MD
	body []byte // the request message, decompressed by grpc-go
	cn   string // the client certificate's common name, over mutual TLS
}

// grpcCollector is a real grpc-go server of the OTLP trace service that records the raw
// request messages and answers with respond (an empty response if respond is nil).
type grpcCollector struct {
	addr    string
	gunzips atomic.Int32 // messages the server decompressed
	mu      sync.Mutex
	calls   []grpcCall
	respond func(n int) (*coltracepb.ExportTraceServiceResponse, error) // n counts from 1
}

func newGRPCCollector(t testing.TB, respond func(n int) (*coltracepb.ExportTraceServiceResponse, error), opts ...grpcgo.ServerOption) *grpcCollector {
	t.Helper()
	c := &grpcCollector{respond: respond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	// The server decodes nothing: it keeps the bytes the exporter sent.
	srv := grpcgo.NewServer(append(opts, grpcgo.ForceServerCodecV2(rawCodec{}),
		grpcgo.RPCDecompressor(countingGunzip{grpcgo.NewGZIPDecompressor(), &c.gunzips}))...) //nolint:staticcheck // gzip without registering it
	srv.RegisterService(&grpcgo.ServiceDesc{
		ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
		HandlerType: (*any)(nil),
		Methods: []grpcgo.MethodDesc{{
			MethodName: "Export",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpcgo.UnaryServerInterceptor) (any, error) {
				var in rawMessage
				if err := dec(&in); err != nil {
					return nil, err
				}
				return c.record(ctx, in.b)
			},
		}},
	}, struct{}{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return c
}

// countingGunzip is a gzip decompressor that counts the messages it decompresses.
type countingGunzip struct {
	grpcgo.Decompressor //nolint:staticcheck // the per-server decompressor, registering nothing
	n                   *atomic.Int32
}

func (d countingGunzip) Do(r io.Reader) ([]byte, error) {
	d.n.Add(1)
	return d.Decompressor.Do(r)
}

func (c *grpcCollector) record(ctx context.Context, body []byte) (*rawMessage, error) {
	call := grpcCall{body: body}
	call.md, _ = metadata.FromIncomingContext(ctx)
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			call.cn = ti.State.PeerCertificates[0].Subject.CommonName
		}
	}
	c.mu.Lock()
	c.calls = append(c.calls, call)
	n := len(c.calls)
	c.mu.Unlock()
	resp := &coltracepb.ExportTraceServiceResponse{}
	if c.respond != nil {
		var err error
		if resp, err = c.respond(n); err != nil {
			return nil, err
		}
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		return nil, err
	}
	return &rawMessage{b: b}, nil
}

func (c *grpcCollector) got() []grpcCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]grpcCall(nil), c.calls...)
}

// newGRPCTestExporter returns a gRPC exporter that ignores the process environment and
// does not retry, unless opts say otherwise; it is shut down when the test ends.
func newGRPCTestExporter(t testing.TB, opts ...Option) *Exporter {
	t.Helper()
	base := []Option{withEnv(func(string) string { return "" }, nil), WithRetry(noRetry)}
	exp, err := NewGRPCExporter(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return exp
}

// TestGRPCExporterSendsTheHTTPRequest checks that the gRPC exporter sends, as the message
// of TraceService/Export, the very bytes the HTTP exporter posts (which the encoding tests
// compare with the official exporter's), with the configured headers as metadata, with
// and without gzip.
func TestGRPCExporterSendsTheHTTPRequest(t *testing.T) {
	spans := fixture(t).Snapshots()
	want := exportOurs(t, spans)
	for _, gzip := range []bool{false, true} {
		c := newGRPCCollector(t, nil)
		exp := newGRPCTestExporter(t, env(map[string]string{
			"TRACES_ENDPOINT": c.addr, "TRACES_INSECURE": "true", "HEADERS": "Api-Key=s%20cret,tenant=a",
		}), WithGzip(gzip))
		if err := exp.ExportSpans(t.Context(), spans); err != nil {
			t.Fatal(err)
		}
		calls := c.got()
		if len(calls) != 1 {
			t.Fatalf("gzip %v: %d calls, want 1", gzip, len(calls))
		}
		got := calls[0]
		if !bytes.Equal(got.body, want) {
			requireEqual(t, decode(t, want), decode(t, got.body))
			t.Fatalf("gzip %v: the message differs from the HTTP body in bytes only", gzip)
		}
		for k, v := range map[string]string{"api-key": "s cret", "tenant": "a", "content-type": "application/grpc+proto"} {
			if g := got.md.Get(k); len(g) != 1 || g[0] != v {
				t.Errorf("gzip %v: metadata %s = %q, want %q", gzip, k, g, v)
			}
		}
		if ua := strings.Join(got.md.Get("user-agent"), ","); !strings.HasPrefix(ua, userAgent) {
			t.Errorf("user-agent %q", ua)
		}
		if n := c.gunzips.Load(); (n == 1) != gzip || n > 1 {
			t.Errorf("gzip %v: the collector decompressed %d messages", gzip, n)
		}
	}
}

func TestGRPCRetries(t *testing.T) {
	retryInfo := func(code codes.Code, d time.Duration) error {
		st, err := status.New(code, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tt := range []struct {
		name    string
		first   error
		retry   bool
		atLeast time.Duration
	}{
		{"unavailable", status.Error(codes.Unavailable, "restarting"), true, 0},
		{"deadline exceeded", status.Error(codes.DeadlineExceeded, "slow"), true, 0},
		{"aborted", status.Error(codes.Aborted, "x"), true, 0},
		{"data loss", status.Error(codes.DataLoss, "x"), true, 0},
		{"unavailable with RetryInfo", retryInfo(codes.Unavailable, 400*time.Millisecond), true, 400 * time.Millisecond},
		{"resource exhausted with RetryInfo", retryInfo(codes.ResourceExhausted, 400*time.Millisecond), true, 400 * time.Millisecond},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "full"), false, 0},
		{"invalid argument", status.Error(codes.InvalidArgument, "bad span"), false, 0},
		{"unauthenticated", status.Error(codes.Unauthenticated, "who"), false, 0},
		{"unimplemented", status.Error(codes.Unimplemented, "no traces here"), false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newGRPCCollector(t, func(n int) (*coltracepb.ExportTraceServiceResponse, error) {
				if n == 1 {
					return nil, tt.first
				}
				return &coltracepb.ExportTraceServiceResponse{}, nil
			})
			exp := newGRPCTestExporter(t, WithEndpointURL("http://"+c.addr), fastRetry)
			start := time.Now()
			err := exp.ExportSpans(t.Context(), oneSpan(t))
			elapsed := time.Since(start)
			calls := c.got()
			if tt.retry {
				if err != nil || len(calls) != 2 {
					t.Fatalf("err %v after %d calls, want success after 2", err, len(calls))
				}
				if !bytes.Equal(calls[0].body, calls[1].body) {
					t.Error("the retry sent a different message")
				}
				if elapsed < tt.atLeast {
					t.Errorf("retried after %v, before the RetryInfo delay of %v", elapsed, tt.atLeast)
				}
				return
			}
			if err == nil || len(calls) != 1 {
				t.Fatalf("err %v after %d calls, want a failure after 1", err, len(calls))
			}
			st, _ := status.FromError(tt.first)
			if msg := err.Error(); !strings.Contains(msg, st.Code().String()) || !strings.Contains(msg, c.addr) {
				t.Errorf("error %q names neither the code nor the endpoint", msg)
			}
		})
	}
}

// TestGRPCHostileCollector checks what the exporter makes of a collector's answers: a
// long, multi-line message becomes one bounded line of the error, and a partial success
// is reported.
func TestGRPCHostileCollector(t *testing.T) {
	long := "first line\nsecond line\r\n" + strings.Repeat("x", 4000)
	c := newGRPCCollector(t, func(n int) (*coltracepb.ExportTraceServiceResponse, error) {
		if n == 1 {
			return nil, status.Error(codes.InvalidArgument, long)
		}
		return &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too old"}}, nil
	})
	exp := newGRPCTestExporter(t, WithEndpointURL("http://"+c.addr))
	err := exp.ExportSpans(t.Context(), oneSpan(t))
	if err == nil {
		t.Fatal("no error")
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || len(msg) > maxSnippet+200 || !strings.Contains(msg, "first line second line") {
		t.Errorf("error of %d bytes: %q", len(msg), msg[:min(len(msg), 300)])
	}
	err = exp.ExportSpans(t.Context(), oneSpan(t))
	if err == nil || !strings.Contains(err.Error(), "2 spans rejected: too old") {
		t.Errorf("partial success: err = %v", err)
	}
}

// TestGRPCEnvTLS exports over mutual TLS configured by the certificate variables, to an
// https:// endpoint and to host:port (TLS unless insecure).
func TestGRPCEnvTLS(t *testing.T) {
	pki := newPKI(t, t.TempDir())
	c := newGRPCCollector(t, nil, grpcgo.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	})))
	mtls := map[string]string{"CERTIFICATE": pki.caFile, "CLIENT_CERTIFICATE": pki.clientCertFile, "CLIENT_KEY": pki.clientKeyFile}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range mtls {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		vars map[string]string
		ok   bool
	}{
		{"https URL", with(map[string]string{"ENDPOINT": "https://" + c.addr}), true},
		{"host:port", with(map[string]string{"TRACES_ENDPOINT": c.addr}), true},
		{"host:port, insecure false", with(map[string]string{"TRACES_ENDPOINT": c.addr, "INSECURE": "false"}), true},
		{"plain to a TLS server", with(map[string]string{"TRACES_ENDPOINT": c.addr, "INSECURE": "true", "CERTIFICATE": "", "CLIENT_CERTIFICATE": "", "CLIENT_KEY": ""}), false},
		{"no client certificate", map[string]string{"TRACES_ENDPOINT": "https://" + c.addr, "CERTIFICATE": pki.caFile}, false},
		{"unknown CA", map[string]string{"TRACES_ENDPOINT": "https://" + c.addr, "CLIENT_CERTIFICATE": pki.clientCertFile, "CLIENT_KEY": pki.clientKeyFile}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(c.got())
			exp := newGRPCTestExporter(t, env(tt.vars))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := exp.ExportSpans(ctx, oneSpan(t))
			calls := c.got()
			if !tt.ok {
				if err == nil || len(calls) != before {
					t.Fatalf("err %v, %d calls received", err, len(calls)-before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) != before+1 || calls[before].cn != "test client" {
				t.Errorf("%d calls, client certificate %q", len(calls)-before, calls[len(calls)-1].cn)
			}
		})
	}
}

func TestGRPCConfig(t *testing.T) {
	for _, tt := range []struct {
		name     string
		vars     map[string]string
		opts     []Option
		target   string
		secure   bool
		errNames string // a substring of the error, or "" for none
	}{
		{name: "default", target: "localhost:4317"},
		{name: "http URL, path ignored", vars: map[string]string{"ENDPOINT": "http://collector:4317/some/path"}, target: "collector:4317"},
		{name: "https URL", vars: map[string]string{"ENDPOINT": "https://collector:4317"}, target: "collector:4317", secure: true},
		{name: "host:port is TLS", vars: map[string]string{"TRACES_ENDPOINT": "collector:4317"}, target: "collector:4317", secure: true},
		{name: "host:port insecure", vars: map[string]string{"TRACES_ENDPOINT": "[::1]:4317", "TRACES_INSECURE": "true"}, target: "[::1]:4317"},
		{name: "the traces variable wins", vars: map[string]string{"ENDPOINT": "http://a:1", "TRACES_ENDPOINT": "http://b:2"}, target: "b:2"},
		{name: "option wins", vars: map[string]string{"ENDPOINT": "http://a:1"}, opts: []Option{WithEndpointURL("https://c:3/x")}, target: "c:3", secure: true},
		{name: "host alone", vars: map[string]string{"ENDPOINT": "collector"}, errNames: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "other scheme", vars: map[string]string{"TRACES_ENDPOINT": "grpc://c:4317"}, errNames: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{name: "bad insecure", vars: map[string]string{"INSECURE": "sometimes"}, errNames: "OTEL_EXPORTER_OTLP_INSECURE"},
		{name: "TLS settings for plain gRPC", vars: map[string]string{"ENDPOINT": "http://c:1"}, opts: []Option{WithTLSClientConfig(&tls.Config{MinVersion: tls.VersionTLS13})}, errNames: "plain"},
		{name: "an HTTP client", opts: []Option{WithHTTPClient(&http.Client{})}, errNames: "WithHTTPClient"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := newConfig(append([]Option{env(tt.vars)}, tt.opts...), true)
			if tt.errNames != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errNames) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want one line naming %s", err, tt.errNames)
				}
				if _, err := NewGRPCExporter(t.Context(), append([]Option{env(tt.vars)}, tt.opts...)...); err == nil {
					t.Fatal("NewGRPCExporter: no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.target() != tt.target || cfg.secure() != tt.secure {
				t.Errorf("target %s secure %v, want %s %v", cfg.target(), cfg.secure(), tt.target, tt.secure)
			}
		})
	}
}

// TestGRPCShutdown checks that Shutdown interrupts an export that waits on a collector
// that does not answer, and that later exports fail.
func TestGRPCShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	c := newGRPCCollector(t, func(int) (*coltracepb.ExportTraceServiceResponse, error) {
		arrived <- struct{}{}
		<-release
		return &coltracepb.ExportTraceServiceResponse{}, nil
	})
	defer close(release)
	exp := newGRPCTestExporter(t, WithEndpointURL("http://"+c.addr), WithTimeout(0))
	done := make(chan error, 1)
	go func() { done <- exp.ExportSpans(context.Background(), oneSpan(t)) }()
	<-arrived
	shutdownInterrupts(t, exp, done)
	if err := exp.ExportSpans(t.Context(), oneSpan(t)); !errors.Is(err, ErrShutdown) {
		t.Errorf("export after Shutdown: %v", err)
	}
}
