package otlp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/proto"
)

// env returns an option that reads the given variables (names without the
// OTEL_EXPORTER_OTLP_ prefix) instead of the process environment.
func env(vars map[string]string) Option {
	return withEnv(func(name string) string {
		if !strings.HasPrefix(name, envPrefix) {
			return ""
		}
		return vars[strings.TrimPrefix(name, envPrefix)]
	}, nil)
}

func TestConfigFromEnv(t *testing.T) {
	dir := t.TempDir()
	pki := newPKI(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		vars    map[string]string
		opts    []Option
		url     string
		headers map[string]string
		timeout time.Duration // 0: the default; -1: none
		gzip    bool
		tls     bool
		err     string // a substring of the error; every error must name its source
	}{
		{name: "defaults", url: "http://localhost:4318/v1/traces"},
		{name: "base endpoint", vars: map[string]string{"ENDPOINT": "http://collector:4318"}, url: "http://collector:4318/v1/traces"},
		{name: "base endpoint with slash", vars: map[string]string{"ENDPOINT": "http://collector:4318/"}, url: "http://collector:4318/v1/traces"},
		{name: "base endpoint with path", vars: map[string]string{"ENDPOINT": "https://collector/otlp/"}, url: "https://collector/otlp/v1/traces"},
		{name: "base endpoint trimmed, query dropped", vars: map[string]string{"ENDPOINT": "  HTTP://c:1/p?x=1  "}, url: "http://c:1/p/v1/traces"},
		{name: "signal endpoint as is", vars: map[string]string{"TRACES_ENDPOINT": "https://c:4318/custom/traces"}, url: "https://c:4318/custom/traces"},
		{name: "signal endpoint without path", vars: map[string]string{"TRACES_ENDPOINT": "http://c:4318"}, url: "http://c:4318/"},
		{name: "signal endpoint wins", vars: map[string]string{"ENDPOINT": "http://a:1", "TRACES_ENDPOINT": "http://b:2/t"}, url: "http://b:2/t"},
		{name: "empty counts as unset", vars: map[string]string{"ENDPOINT": "http://a:1", "TRACES_ENDPOINT": "  "}, url: "http://a:1/v1/traces"},
		{name: "option wins", vars: map[string]string{"TRACES_ENDPOINT": "http://b:2/t"}, opts: []Option{WithEndpointURL("https://o:3")}, url: "https://o:3/"},
		{name: "endpoint without scheme", vars: map[string]string{"ENDPOINT": "collector:4318"}, err: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "endpoint with other scheme", vars: map[string]string{"TRACES_ENDPOINT": "grpc://c:4317"}, err: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{name: "endpoint without host", vars: map[string]string{"ENDPOINT": "http:///x"}, err: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "endpoint unparsable", vars: map[string]string{"ENDPOINT": "http://c:port"}, err: "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{name: "bad option endpoint", opts: []Option{WithEndpointURL("c:1")}, err: "WithEndpointURL"},

		{
			name: "headers", vars: map[string]string{"HEADERS": " api-key = s3cr%3Dt , x-name=hello%20world,,"},
			headers: map[string]string{"api-key": "s3cr=t", "x-name": "hello world"},
		},
		{
			name: "signal headers replace", vars: map[string]string{"HEADERS": "a=1,b=2", "TRACES_HEADERS": "c=3"},
			headers: map[string]string{"c": "3"},
		},
		{name: "option headers replace", vars: map[string]string{"HEADERS": "a=1"}, opts: []Option{WithHeaders(map[string]string{"d": "4"})}, headers: map[string]string{"d": "4"}},
		{name: "header without =", vars: map[string]string{"HEADERS": "a=1,b"}, err: "OTEL_EXPORTER_OTLP_HEADERS"},
		{name: "header bad name", vars: map[string]string{"TRACES_HEADERS": "a b=1"}, err: "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		{name: "header bad escape", vars: map[string]string{"HEADERS": "a=%zz"}, err: "OTEL_EXPORTER_OTLP_HEADERS"},

		{name: "timeout", vars: map[string]string{"TIMEOUT": "1500"}, timeout: 1500 * time.Millisecond},
		{name: "signal timeout wins", vars: map[string]string{"TIMEOUT": "1500", "TRACES_TIMEOUT": "250"}, timeout: 250 * time.Millisecond},
		{name: "zero timeout", vars: map[string]string{"TIMEOUT": "0"}, timeout: -1},
		{name: "option timeout", vars: map[string]string{"TIMEOUT": "1500"}, opts: []Option{WithTimeout(time.Second)}, timeout: time.Second},
		{name: "timeout not a number", vars: map[string]string{"TIMEOUT": "10s"}, err: "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{name: "timeout negative", vars: map[string]string{"TRACES_TIMEOUT": "-1"}, err: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"},

		{name: "gzip", vars: map[string]string{"COMPRESSION": "gzip"}, gzip: true},
		{name: "signal compression wins", vars: map[string]string{"COMPRESSION": "gzip", "TRACES_COMPRESSION": "none"}, gzip: false},
		{name: "option compression", vars: map[string]string{"COMPRESSION": "none"}, opts: []Option{WithGzip(true)}, gzip: true},
		{name: "unknown compression", vars: map[string]string{"TRACES_COMPRESSION": "zstd"}, err: "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"},

		{name: "ca", vars: map[string]string{"ENDPOINT": "https://c", "CERTIFICATE": pki.caFile}, url: "https://c/v1/traces", tls: true},
		{name: "signal ca", vars: map[string]string{"ENDPOINT": "https://c", "CERTIFICATE": notPEM, "TRACES_CERTIFICATE": pki.caFile}, err: "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{
			name: "client certificate", url: "https://c/v1/traces", tls: true,
			vars: map[string]string{"ENDPOINT": "https://c", "CLIENT_CERTIFICATE": pki.clientCertFile, "CLIENT_KEY": pki.clientKeyFile},
		},
		{
			name: "signal client certificate", url: "https://c/v1/traces", tls: true,
			vars: map[string]string{"ENDPOINT": "https://c", "TRACES_CLIENT_CERTIFICATE": pki.clientCertFile, "TRACES_CLIENT_KEY": pki.clientKeyFile},
		},
		{name: "ca missing", vars: map[string]string{"ENDPOINT": "https://c", "CERTIFICATE": filepath.Join(dir, "nope.pem")}, err: "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{name: "ca not PEM", vars: map[string]string{"ENDPOINT": "https://c", "TRACES_CERTIFICATE": notPEM}, err: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"},
		{name: "client certificate without key", vars: map[string]string{"ENDPOINT": "https://c", "CLIENT_CERTIFICATE": pki.clientCertFile}, err: "OTEL_EXPORTER_OTLP_CLIENT_KEY"},
		{name: "client key without certificate", vars: map[string]string{"ENDPOINT": "https://c", "TRACES_CLIENT_KEY": pki.clientKeyFile}, err: "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE"},
		{
			name: "client key mismatch", vars: map[string]string{"ENDPOINT": "https://c", "CLIENT_CERTIFICATE": pki.clientCertFile, "CLIENT_KEY": pki.caKeyFile},
			err: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
		},
		{name: "tls with http endpoint", vars: map[string]string{"CERTIFICATE": pki.caFile}, err: "plain HTTP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := newConfig(append([]Option{env(tt.vars)}, tt.opts...), false)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("no error, want one naming %s", tt.err)
				}
				if !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q: want one line naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.url == "" {
				tt.url = DefaultEndpointURL
			}
			if got := cfg.endpoint.String(); got != tt.url {
				t.Errorf("endpoint = %s, want %s", got, tt.url)
			}
			if len(cfg.headers) != len(tt.headers) {
				t.Errorf("headers = %v, want %v", cfg.headers, tt.headers)
			}
			for k, v := range tt.headers {
				if cfg.headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, cfg.headers[k], v)
				}
			}
			switch tt.timeout {
			case 0:
				tt.timeout = DefaultTimeout
			case -1:
				tt.timeout = 0
			}
			if cfg.timeout != tt.timeout {
				t.Errorf("timeout = %v, want %v", cfg.timeout, tt.timeout)
			}
			if cfg.gzip != tt.gzip {
				t.Errorf("gzip = %v, want %v", cfg.gzip, tt.gzip)
			}
			if (cfg.tls != nil) != tt.tls {
				t.Errorf("tls = %v, want %v", cfg.tls != nil, tt.tls)
			}
		})
	}
}

func TestNewHTTPExporterError(t *testing.T) {
	_, err := NewHTTPExporter(context.Background(), env(map[string]string{"TIMEOUT": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_TIMEOUT") {
		t.Fatalf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewHTTPExporter(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestEnvHeadersAndGzip exports through the environment's headers and compression and
// compares what the collector decompresses with an uncompressed export.
func TestEnvHeadersAndGzip(t *testing.T) {
	spans := fixture(t).Snapshots()
	plain := exportOurs(t, spans)

	c := newCollector(t, nil)
	exp := newTestExporter(t, env(map[string]string{
		"TRACES_ENDPOINT":    c.URL + "/custom/path",
		"HEADERS":            "authorization=Bearer%20abc,x-tenant=t1",
		"TRACES_COMPRESSION": "gzip",
	}))
	if err := exp.ExportSpans(t.Context(), spans); err != nil {
		t.Fatal(err)
	}
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	for k, want := range map[string]string{
		"Authorization":    "Bearer abc",
		"X-Tenant":         "t1",
		"Content-Encoding": "gzip",
		"Content-Type":     "application/x-protobuf",
		"User-Agent":       userAgent,
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(r.raw) >= len(r.body) {
		t.Errorf("gzipped body of %d bytes for %d bytes", len(r.raw), len(r.body))
	}
	if !proto.Equal(decode(t, r.body), decode(t, plain)) {
		t.Error("decompressed request differs from the uncompressed one")
	}
}

// TestEnvTimeout checks that OTEL_EXPORTER_OTLP_TIMEOUT bounds an attempt.
func TestEnvTimeout(t *testing.T) {
	release := make(chan struct{})
	c := newCollector(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	exp := newTestExporter(t, env(map[string]string{"TRACES_ENDPOINT": c.URL, "TIMEOUT": "100"}))
	start := time.Now()
	err := exp.ExportSpans(t.Context(), fixture(t).Snapshots()[:1])
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("export took %v with a 100ms timeout", d)
	}
}

// pki is a CA with a server and a client certificate, as PEM files.
type pki struct {
	caFile, caKeyFile             string
	clientCertFile, clientKeyFile string
	pool                          *x509.CertPool
	server                        tls.Certificate
}

func newPKI(t testing.TB, dir string) *pki {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	p := &pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = write("ca.pem", "CERTIFICATE", caDER)
	p.caKeyFile = write("ca-key.pem", "PRIVATE KEY", keyDER(caKey))
	clientDER, clientKey := issue(2, "test client", x509.ExtKeyUsageClientAuth)
	p.clientCertFile = write("client.pem", "CERTIFICATE", clientDER)
	p.clientKeyFile = write("client-key.pem", "PRIVATE KEY", keyDER(clientKey))
	serverDER, serverKey := issue(3, "test server", x509.ExtKeyUsageServerAuth)
	p.server = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	return p
}

// TestEnvTLS exports over mutual TLS configured by the certificate variables.
func TestEnvTLS(t *testing.T) {
	pki := newPKI(t, t.TempDir())
	clients := make(chan string, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clients <- r.TLS.PeerCertificates[0].Subject.CommonName
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failing cases log handshake errors
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.pool,
		MinVersion:   tls.VersionTLS12,
	}
	srv.StartTLS()
	defer srv.Close()
	spans := fixture(t).Snapshots()[:2]

	tests := []struct {
		name string
		vars map[string]string
		ok   bool
	}{
		{"mutual TLS", map[string]string{
			"CERTIFICATE": pki.caFile, "CLIENT_CERTIFICATE": pki.clientCertFile, "CLIENT_KEY": pki.clientKeyFile,
		}, true},
		{"signal variables", map[string]string{
			"TRACES_CERTIFICATE": pki.caFile, "TRACES_CLIENT_CERTIFICATE": pki.clientCertFile, "TRACES_CLIENT_KEY": pki.clientKeyFile,
		}, true},
		{"no client certificate", map[string]string{"CERTIFICATE": pki.caFile}, false},
		{"unknown CA", map[string]string{"CLIENT_CERTIFICATE": pki.clientCertFile, "CLIENT_KEY": pki.clientKeyFile}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.vars["TRACES_ENDPOINT"] = srv.URL + "/v1/traces"
			exp := newTestExporter(t, env(tt.vars))
			err := exp.ExportSpans(t.Context(), spans)
			if !tt.ok {
				if err == nil {
					t.Fatal("export succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cn := <-clients; cn != "test client" {
				t.Errorf("client certificate %q", cn)
			}
		})
	}
}

// TestWithHTTPClient checks that a client given as an option is the one used.
func TestWithHTTPClient(t *testing.T) {
	c := newCollector(t, nil)
	var used bool
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	exp := newTestExporter(t, WithEndpointURL(c.URL), WithHTTPClient(client))
	if err := exp.ExportSpans(t.Context(), []sdktrace.ReadOnlySpan{fixture(t).Snapshots()[1]}); err != nil {
		t.Fatal(err)
	}
	if !used || len(c.got()) != 1 {
		t.Fatalf("client used %v, %d requests", used, len(c.got()))
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
