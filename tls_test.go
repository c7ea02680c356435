package svckit_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// certs is a development CA in a temporary directory.
type certs struct {
	dir string
	ca  *mtls.CA
}

func newCerts(t *testing.T) *certs {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := mtls.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &certs{dir: dir, ca: ca}
}

// issue writes SERVICE.crt and SERVICE.key and returns the -tls-* arguments for them.
func (c *certs) issue(t *testing.T, service string) []string {
	t.Helper()
	is, err := c.ca.Issue(service)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := is.Save(c.dir, service)
	if err != nil {
		t.Fatal(err)
	}
	return []string{"-tls-cert", certFile, "-tls-key", keyFile, "-tls-ca", filepath.Join(c.dir, mtls.CACertFile)}
}

func (c *certs) source(t *testing.T, service string) *mtls.Source {
	t.Helper()
	args := c.issue(t, service)
	src, err := mtls.NewSource(args[1], args[3], args[5])
	if err != nil {
		t.Fatal(err)
	}
	return src
}

const whoService = "svckit.test.Who"

// tlsApp runs addsvc plus a "who am I talking to" endpoint on HTTP and gRPC that
// answers the caller's service identity, with the given arguments.
type tlsApp struct {
	app                     *svckit.App
	httpAddr, grpcAddr, adm string
}

func startTLSApp(t *testing.T, args ...string) *tlsApp {
	t.Helper()
	base := []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-log-flush", "0"}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := svckit.New(ctx, "orders", &svckit.Config{}, svckit.Options{
		Stdout: io.Discard, Args: append(base, args...),
		Env: func(string) (string, bool) { return "", false }, Signals: []os.Signal{},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	e := addsvc.MakeEndpoints(addsvc.New())
	addsvc.RegisterHTTP(app.HTTP(), e)
	addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), e)
	who := func(ctx context.Context, _ string) (string, error) {
		id, ok := mtls.PeerFromContext(ctx)
		if !ok {
			return "", svcerr.New(svcerr.Unauthenticated, "no client certificate")
		}
		return id.Service, nil
	}
	shttp.Handle(app.HTTP(), "GET /who", "Who", who)
	sgrpc.Unary(app.GRPC(whoService), "Who", who,
		func(r *wrapperspb.StringValue) (string, error) { return r.GetValue(), nil },
		func(s string) (*wrapperspb.StringValue, error) { return wrapperspb.String(s), nil })
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	ta := &tlsApp{app: app}
	for name, dst := range map[string]*string{"http": &ta.httpAddr, "grpc": &ta.grpcAddr, "admin": &ta.adm} {
		addr, err := app.Addr(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		*dst = addr.String()
	}
	waitReady(t, "http://"+ta.adm)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("app did not stop")
		}
	})
	return ta
}

// whoGRPC calls Who over a new gRPC connection with the dial option and returns the
// answer and the serial number of the server's certificate.
func whoGRPC(t *testing.T, addr string, creds grpc.DialOption) (string, string, error) {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var p peer.Peer
	call := sgrpc.UnaryCall(sgrpc.NewClient(cc, whoService, sgrpc.WithCallOptions(grpc.Peer(&p))), "Who",
		func(s string) (*wrapperspb.StringValue, error) { return wrapperspb.String(s), nil },
		func(r *wrapperspb.StringValue) (string, error) { return r.GetValue(), nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := call(ctx, "")
	serial := ""
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		serial = ti.State.PeerCertificates[0].SerialNumber.Text(16)
	}
	return out, serial, err
}

// whoHTTP calls GET /who with client hc.
func whoHTTP(t *testing.T, url string, hc *http.Client) (string, error) {
	t.Helper()
	c, err := shttp.NewClient(url, "orders", shttp.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return shttp.Call[struct{}, string](c, "GET /who", "Who")(ctx, struct{}{})
}

func TestAppMTLS(t *testing.T) {
	c := newCerts(t)
	ta := startTLSApp(t, c.issue(t, "orders")...)
	gateway := c.source(t, "gateway")
	// stranger trusts both CAs, but its certificate is of the other one: orders refuses it.
	other := newCerts(t)
	otherArgs := other.issue(t, "gateway")
	bundle := filepath.Join(t.TempDir(), "both.crt")
	if err := os.WriteFile(bundle, append(c.ca.CertPEM(), other.ca.CertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	stranger, err := mtls.NewSource(otherArgs[1], otherArgs[3], bundle)
	if err != nil {
		t.Fatal(err)
	}

	// The admin listener stays plain HTTP for probes and scrapes.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + ta.adm + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("admin %s: %d", path, resp.StatusCode)
		}
	}

	t.Run("http", func(t *testing.T) {
		newClient := func(cfg *tls.Config) *http.Client { return &http.Client{Transport: shttp.NewTransport(cfg)} }
		if got, err := whoHTTP(t, "https://"+ta.httpAddr, newClient(gateway.ClientTLS("orders"))); err != nil || got != "gateway" {
			t.Fatalf("as the gateway: %q, %v", got, err)
		}
		// The App's own client: it presents the App's certificate.
		if got, err := whoHTTP(t, "https://"+ta.httpAddr, ta.app.HTTPClient()); err != nil || got != "orders" {
			t.Fatalf("with app.HTTPClient: %q, %v", got, err)
		}
		sum, err := addsvc.NewHTTPClient("https://"+ta.httpAddr, shttp.WithTLSConfig(gateway.ClientTLS()))
		if err != nil {
			t.Fatal(err)
		}
		if r, err := sum.Sum(context.Background(), addsvc.SumRequest{A: 2, B: 3}); err != nil || r.V != 5 {
			t.Fatalf("Sum over mTLS: %+v, %v", r, err)
		}
		for _, tc := range []struct {
			name, url string
			hc        *http.Client
			want      svcerr.Kind
		}{
			{"no certificate", "https://", newClient(&tls.Config{InsecureSkipVerify: true}), svcerr.Unavailable},
			{"certificate of another CA", "https://", newClient(stranger.ClientTLS()), svcerr.Unavailable},
			{"plaintext", "http://", http.DefaultClient, svcerr.InvalidArgument}, // net/http's 400
		} {
			got, err := whoHTTP(t, tc.url+ta.httpAddr, tc.hc)
			if svcerr.KindOf(err) != tc.want {
				t.Fatalf("%s: %q, %v; want %s", tc.name, got, err, tc.want)
			}
			t.Logf("%s: %v", tc.name, err)
		}
	})

	t.Run("grpc", func(t *testing.T) {
		if got, _, err := whoGRPC(t, ta.grpcAddr, sgrpc.DialCredentials(gateway.ClientTLS("orders"))); err != nil || got != "gateway" {
			t.Fatalf("as the gateway: %q, %v", got, err)
		}
		if got, _, err := whoGRPC(t, ta.grpcAddr, ta.app.DialCredentials("orders")); err != nil || got != "orders" {
			t.Fatalf("with app.DialCredentials: %q, %v", got, err)
		}
		for name, creds := range map[string]grpc.DialOption{
			"no certificate":            sgrpc.DialCredentials(&tls.Config{InsecureSkipVerify: true}),
			"certificate of another CA": sgrpc.DialCredentials(stranger.ClientTLS()),
			"plaintext":                 sgrpc.DialCredentials(nil),
		} {
			_, _, err := whoGRPC(t, ta.grpcAddr, creds)
			if svcerr.KindOf(err) != svcerr.Unavailable {
				t.Fatalf("%s: %v, want unavailable", name, err)
			}
			t.Logf("%s: %v", name, err)
		}
		// Health checks on the gRPC port need a certificate too.
		cc, err := grpc.NewClient("passthrough:///"+ta.grpcAddr, sgrpc.DialCredentials(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("plaintext health check: %v", err)
		}
	})
}

// TestAppReloadsCertificates rewrites the App's certificate files while it runs: its
// reload worker picks them up and new connections see the new certificate.
func TestAppReloadsCertificates(t *testing.T) {
	c := newCerts(t)
	ta := startTLSApp(t, c.issue(t, "orders")...)
	gateway := c.source(t, "gateway")
	_, before, err := whoGRPC(t, ta.grpcAddr, sgrpc.DialCredentials(gateway.ClientTLS()))
	if err != nil || before != ta.app.TLS().Certificate().SerialNumber.Text(16) {
		t.Fatalf("before: serial %s, %v", before, err)
	}
	is, err := c.ca.Issue("orders")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := is.Save(c.dir, "orders"); err != nil {
		t.Fatal(err)
	}
	want := is.Cert.SerialNumber.Text(16)
	deadline := time.Now().Add(20 * time.Second)
	for ta.app.TLS().Certificate().SerialNumber.Text(16) != want {
		if time.Now().After(deadline) {
			t.Fatal("the App did not reload its certificate")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, after, err := whoGRPC(t, ta.grpcAddr, sgrpc.DialCredentials(gateway.ClientTLS()))
	if err != nil || after != want || after == before {
		t.Fatalf("after: serial %s, %v; want %s", after, err, want)
	}
}

func TestAppPlainHTTPUnderMTLS(t *testing.T) {
	c := newCerts(t)
	ta := startTLSApp(t, append(c.issue(t, "gateway"), "-tls-http", "plain")...)
	if _, err := whoHTTP(t, "http://"+ta.httpAddr, http.DefaultClient); svcerr.KindOf(err) != svcerr.Unauthenticated {
		t.Fatalf("plain HTTP: %v, want the endpoint's own unauthenticated (no peer)", err)
	}
	if _, _, err := whoGRPC(t, ta.grpcAddr, sgrpc.DialCredentials(nil)); svcerr.KindOf(err) != svcerr.Unavailable {
		t.Fatalf("plaintext gRPC: %v, want unavailable", err)
	}
}

func TestAppTLSConfigErrors(t *testing.T) {
	c := newCerts(t)
	good := c.issue(t, "orders")
	cert, key, ca := good[1], good[3], good[5]
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"certificate only", []string{"-tls-cert", cert}, nil, "-tls-key (TLS_KEY)"},
		{"no CA", []string{"-tls-cert", cert, "-tls-key", key}, nil, "-tls-ca (TLS_CA)"},
		{"key and CA only", []string{"-tls-key", key, "-tls-ca", ca}, nil, "-tls-cert (TLS_CERT)"},
		{"from the environment", []string{}, map[string]string{"TLS_CERT": cert, "TLS_CA": ca}, "-tls-key (TLS_KEY)"},
		{"HTTP mode", append(good[:6:6], "-tls-http", "tls"), nil, "-tls-http (TLS_HTTP)"},
		{"allow without certificates", []string{"-tls-allow", "gateway"}, nil, "-tls-allow (TLS_ALLOW)"},
		{"missing file", []string{"-tls-cert", cert, "-tls-key", filepath.Join(c.dir, "nope.key"), "-tls-ca", ca}, nil, "nope.key"},
		{"key of another certificate", []string{"-tls-cert", cert, "-tls-key", newCerts(t).issue(t, "orders")[3], "-tls-ca", ca}, nil, "private key does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svckit.New(context.Background(), "orders", &svckit.Config{}, svckit.Options{
				Stdout: io.Discard, Args: tc.args,
				Env: func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok },
			})
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("New: %v; want one line containing %q", err, tc.want)
			}
		})
	}
	// All three from the environment work.
	_, err := svckit.New(context.Background(), "orders", &svckit.Config{}, svckit.Options{
		Stdout: io.Discard, Args: []string{},
		Env: func(k string) (string, bool) {
			v, ok := map[string]string{"TLS_CERT": cert, "TLS_KEY": key, "TLS_CA": ca}[k]
			return v, ok
		},
	})
	if err != nil {
		t.Fatalf("from the environment: %v", err)
	}
}
