package mtls_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

func TestEnsureCA(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := mtls.EnsureCA(dir)
	if err != nil || !created {
		t.Fatalf("first EnsureCA: created %v, %v", created, err)
	}
	if ca.TrustDomain != mtls.DefaultTrustDomain || !ca.Cert.IsCA {
		t.Fatalf("CA: trust domain %q, IsCA %v", ca.TrustDomain, ca.Cert.IsCA)
	}
	if v := ca.Cert.NotAfter.Sub(ca.Cert.NotBefore); v < mtls.DefaultCAValidity {
		t.Errorf("CA validity %s, want at least %s", v, mtls.DefaultCAValidity)
	}
	st, err := os.Stat(filepath.Join(dir, mtls.CAKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	again, created, err := mtls.EnsureCA(dir)
	if err != nil || created {
		t.Fatalf("second EnsureCA: created %v, %v", created, err)
	}
	if !again.Cert.Equal(ca.Cert) || !again.Key.Equal(ca.Key) {
		t.Fatal("second EnsureCA returned another CA")
	}
	if _, _, err := mtls.EnsureCA(dir, mtls.WithCATrustDomain("other.test")); err == nil || !strings.Contains(err.Error(), `"other.test"`) {
		t.Fatalf("EnsureCA with another trust domain: %v", err)
	}

	other, err := mtls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(newPKI(t).dir, mtls.CAKeyFile))
	tests := []struct {
		name  string
		setup func(dir string)
		want  string
	}{
		{"key missing", func(dir string) { os.Remove(filepath.Join(dir, mtls.CAKeyFile)) }, "ca.key"},
		{"cert garbage", func(dir string) { os.WriteFile(filepath.Join(dir, mtls.CACertFile), []byte("junk"), 0o644) }, "not PEM"},
		{"key of another CA", func(dir string) { os.WriteFile(filepath.Join(dir, mtls.CAKeyFile), otherKey, 0o600) }, "does not belong"},
		{"not a CA", func(dir string) {
			p := newPKI(t)
			certFile, _ := p.issue(t, "orders")
			b, _ := os.ReadFile(certFile)
			os.WriteFile(filepath.Join(dir, mtls.CACertFile), b, 0o644)
		}, "not a CA"},
		{"two certificates", func(dir string) {
			os.WriteFile(filepath.Join(dir, mtls.CACertFile), append(ca.CertPEM(), other.CertPEM()...), 0o644)
		}, "want one certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := ca.Save(dir); err != nil {
				t.Fatal(err)
			}
			tc.setup(dir)
			if _, _, err := mtls.EnsureCA(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EnsureCA: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestIssue(t *testing.T) {
	p := newPKI(t, mtls.WithCATrustDomain("shop.test"))
	is, err := p.ca.Issue("orders", mtls.WithValidity(time.Hour), mtls.WithDNSNames("orders.shop.svc", "localhost"),
		mtls.WithIPs(net.ParseIP("10.0.0.7")))
	if err != nil {
		t.Fatal(err)
	}
	c := is.Cert
	if got := c.URIs[0].String(); len(c.URIs) != 1 || got != "spiffe://shop.test/svc/orders" {
		t.Errorf("URIs = %v", c.URIs)
	}
	if want := []string{"orders", "localhost", "orders.shop.svc"}; !slices.Equal(c.DNSNames, want) {
		t.Errorf("DNSNames = %v, want %v", c.DNSNames, want)
	}
	var ips []string
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	if want := []string{"127.0.0.1", "::1", "10.0.0.7"}; !slices.Equal(ips, want) {
		t.Errorf("IPAddresses = %v, want %v", ips, want)
	}
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		t.Errorf("ExtKeyUsage = %v, want server and client auth", c.ExtKeyUsage)
	}
	if d := time.Until(c.NotAfter); d > time.Hour || d < 50*time.Minute {
		t.Errorf("expires in %s, want about an hour", d)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{eku}, DNSName: "orders"}); err != nil {
			t.Errorf("verify for %v: %v", eku, err)
		}
	}
	id, err := mtls.IdentityOf(c)
	if err != nil || id.Service != "orders" || id.TrustDomain != "shop.test" || id.URI != "spiffe://shop.test/svc/orders" {
		t.Errorf("IdentityOf = %+v, %v", id, err)
	}
	// A second certificate has another key and serial number.
	is2, err := p.ca.Issue("orders")
	if err != nil {
		t.Fatal(err)
	}
	if is2.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 || bytes.Equal(is2.KeyPEM, is.KeyPEM) {
		t.Error("two certificates share a serial number or key")
	}
	if v := is2.Cert.NotAfter.Sub(is2.Cert.NotBefore); v < mtls.DefaultCertValidity || v > mtls.DefaultCertValidity+10*time.Minute {
		t.Errorf("default validity %s", v)
	}
	certFile, keyFile, err := is2.Save(p.dir, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", st.Mode().Perm(), err)
	}
	if filepath.Base(certFile) != "orders.crt" || filepath.Base(keyFile) != "orders.key" {
		t.Errorf("files %s %s", certFile, keyFile)
	}
	// The CA's name constraint: the CA cannot vouch for another trust domain.
	for _, bad := range []string{"", "Orders Service", "../x", "a/b"} {
		if _, err := p.ca.Issue(bad); err == nil {
			t.Errorf("Issue(%q) accepted", bad)
		}
	}
}

func TestNameConstraint(t *testing.T) {
	// A certificate of another trust domain signed by the CA (as a compromised or careless
	// issuer might) does not verify: the CA is constrained to its trust domain.
	p := newPKI(t, mtls.WithCATrustDomain("shop.test"))
	rogue := *p.ca
	rogue.TrustDomain = "bank.test"
	is, err := rogue.Issue("payments")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: pool}); err == nil {
		t.Fatal("a certificate for spiffe://bank.test verified under a CA constrained to shop.test")
	}
}

func TestIdentityOf(t *testing.T) {
	tests := []struct {
		name string
		uris []string
		want string // service, or "" for an error
	}{
		{"identity", []string{"spiffe://svckit.local/svc/orders"}, "orders"},
		{"beside an https URI", []string{"https://example.com/x", "spiffe://svckit.local/svc/orders"}, "orders"},
		{"no URI", nil, ""},
		{"not spiffe", []string{"https://svckit.local/svc/orders"}, ""},
		{"two identities", []string{"spiffe://svckit.local/svc/a", "spiffe://svckit.local/svc/b"}, ""},
		{"not /svc/", []string{"spiffe://svckit.local/ns/default/sa/orders"}, ""},
		{"nested path", []string{"spiffe://svckit.local/svc/orders/x"}, ""},
		{"upper-case trust domain", []string{"spiffe://Svckit.local/svc/orders"}, ""},
		{"port", []string{"spiffe://svckit.local:8443/svc/orders"}, ""},
		{"query", []string{"spiffe://svckit.local/svc/orders?x=1"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &x509.Certificate{}
			for _, u := range tc.uris {
				pu, err := parseURL(u)
				if err != nil {
					t.Fatal(err)
				}
				c.URIs = append(c.URIs, pu)
			}
			id, err := mtls.IdentityOf(c)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("IdentityOf = %+v, want an error", id)
				}
				return
			}
			if err != nil || id.Service != tc.want || id.Cert != c {
				t.Fatalf("IdentityOf = %+v, %v; want service %q", id, err, tc.want)
			}
		})
	}
	if _, ok := mtls.PeerFromContext(context.Background()); ok {
		t.Error("PeerFromContext of a background context reports a peer")
	}
	id, _ := mtls.NewIdentity("svckit.local", "gateway")
	if got, ok := mtls.PeerFromContext(mtls.WithPeer(context.Background(), id)); !ok || got.URI != "spiffe://svckit.local/svc/gateway" {
		t.Errorf("PeerFromContext(WithPeer) = %+v, %v", got, ok)
	}
}

// transports are the two transports every mTLS test runs on.
var transports = []struct {
	name  string
	start func(testing.TB, *tls.Config) *server
	call  func(testing.TB, string, *tls.Config) (who, string, error)
}{
	{"http", startHTTP, callHTTP},
	{"grpc", startGRPC, callGRPC},
}

// refused checks that a call was refused: the client's error is Unavailable and contains
// clientErr, or the server's handshake failed with serverErr. Under TLS 1.3 a client
// learns that the server refused its certificate only after its side of the handshake
// is done, from the server's alert or, when its first write wins the race with the alert,
// from the closed connection; so the reason is checked where it is certain.
func refused(t *testing.T, srv *server, err error, clientErr, serverErr string) {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded, want it refused")
	}
	if svcerr.KindOf(err) != svcerr.Unavailable {
		t.Fatalf("kind %s (%v), want unavailable", svcerr.KindOf(err), err)
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) && se.GRPCStatus().Code() != codes.Unavailable {
		t.Fatalf("gRPC status %v, want Unavailable", se.GRPCStatus().Code())
	}
	if !strings.Contains(err.Error(), clientErr) {
		t.Fatalf("client error %q does not contain %q", err, clientErr)
	}
	if serverErr != "" {
		waitFor(t, "the server's handshake error "+serverErr, func() bool {
			return strings.Contains(srv.handshakes.String(), serverErr)
		})
	}
	if n := srv.calls.Load(); n != 0 {
		t.Fatalf("the endpoint ran %d times for a refused client", n)
	}
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // another CA, same trust domain
	orders := p.source(t, "orders")
	gateway := p.source(t, "gateway")
	catalog := p.source(t, "catalog")
	ordersOnlyGateway := p.source(t, "orders", mtls.WithAllowedPeers("gateway"))
	otherOrders := other.source(t, "orders")
	// stranger has a certificate of the other CA but trusts both, so that it is the
	// server that refuses it.
	certFile, keyFile := other.issue(t, "gateway")
	bundle := filepath.Join(t.TempDir(), "both.crt")
	if err := os.WriteFile(bundle, append(p.ca.CertPEM(), other.ca.CertPEM()...), 0o644); err != nil {
		t.Fatal(err)
	}
	stranger, err := mtls.NewSource(certFile, keyFile, bundle)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		server *mtls.Source
		client *tls.Config // nil: plaintext
		want   string      // the caller's service the endpoint sees, or "" when refused
		// for refused calls: part of the client's error and of the server's handshake
		// error, per transport
		clientErr, serverErr map[string]string
	}{
		{name: "certificate of the CA", server: orders, client: gateway.ClientTLS(), want: "gateway"},
		{name: "expected server", server: orders, client: gateway.ClientTLS("orders", "catalog"), want: "gateway"},
		{name: "allowed peer", server: ordersOnlyGateway, client: gateway.ClientTLS(), want: "gateway"},
		{name: "no client certificate", server: orders, client: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
			serverErr: both("client didn't provide a certificate")},
		{name: "client certificate of another CA", server: orders, client: stranger.ClientTLS(),
			serverErr: both("certificate signed by unknown authority")},
		{name: "server certificate of another CA", server: otherOrders, client: gateway.ClientTLS(),
			clientErr: both("mtls: server certificate: x509: certificate signed by unknown authority")},
		{name: "peer not allowed", server: ordersOnlyGateway, client: catalog.ClientTLS(),
			serverErr: both("client spiffe://svckit.local/svc/catalog is not allowed")},
		{name: "unexpected server", server: orders, client: gateway.ClientTLS("payments"),
			clientErr: both("mtls: server is spiffe://svckit.local/svc/orders, want one of [payments]")},
		{name: "plaintext client", server: orders,
			clientErr: map[string]string{"http": "Client sent an HTTP request to an HTTPS server"},
			serverErr: map[string]string{"grpc": "first record does not look like a TLS handshake"}},
	}
	for _, tr := range transports {
		for _, tc := range tests {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				srv := tr.start(t, tc.server.ServerTLS())
				got, _, err := tr.call(t, srv.addr, tc.client)
				if tc.want != "" {
					if err != nil {
						t.Fatal(err)
					}
					if got.Service != tc.want {
						t.Fatalf("the endpoint saw caller %q, want %q", got.Service, tc.want)
					}
					return
				}
				if tc.client == nil && tr.name == "http" {
					// net/http answers a plaintext request on a TLS port with a 400.
					if err == nil || !strings.Contains(err.Error(), tc.clientErr["http"]) || srv.calls.Load() != 0 {
						t.Fatalf("plaintext call: %v", err)
					}
					return
				}
				refused(t, srv, err, tc.clientErr[tr.name], tc.serverErr[tr.name])
			})
		}
	}
}

// both returns the same text for both transports.
func both(s string) map[string]string { return map[string]string{"http": s, "grpc": s} }

// rewrite issues a new certificate for service into p's directory, over the files a
// Source reads, and returns its serial number.
func rewrite(t *testing.T, p *pki, service string) string {
	t.Helper()
	is, err := p.ca.Issue(service)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := is.Save(p.dir, service); err != nil {
		t.Fatal(err)
	}
	return is.Cert.SerialNumber.Text(16)
}

func TestRotation(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := newPKI(t)
			orders := p.source(t, "orders")
			gateway := p.source(t, "gateway")
			srv := tr.start(t, orders.ServerTLS())
			call := func() (who, string) {
				t.Helper()
				w, serverSerial, err := tr.call(t, srv.addr, gateway.ClientTLS())
				if err != nil {
					t.Fatal(err)
				}
				return w, serverSerial
			}
			w, serial1 := call()
			if serial1 != orders.Certificate().SerialNumber.Text(16) || w.Serial != gateway.Certificate().SerialNumber.Text(16) {
				t.Fatalf("before rotation: server serial %s, client serial %s", serial1, w.Serial)
			}

			// The server's files are rewritten with a new certificate; the same server
			// presents it on new connections once the source reloaded.
			serial2 := rewrite(t, p, "orders")
			if changed, err := orders.Reload(); err != nil || !changed {
				t.Fatalf("Reload: changed %v, %v", changed, err)
			}
			if _, got := call(); got != serial2 || got == serial1 {
				t.Fatalf("after rotation the server presented %s, want the new %s (old %s)", got, serial2, serial1)
			}
			if changed, err := orders.Reload(); err != nil || changed {
				t.Fatalf("Reload of unchanged files: changed %v, %v", changed, err)
			}

			// The client's files too: the server sees the client's new certificate.
			clientSerial := rewrite(t, p, "gateway")
			if _, err := gateway.Reload(); err != nil {
				t.Fatal(err)
			}
			if w, _ := call(); w.Serial != clientSerial || w.Service != "gateway" {
				t.Fatalf("the server saw %+v, want gateway with serial %s", w, clientSerial)
			}

			// Bad files are refused and the current certificate keeps serving.
			certFile, keyFile := filepath.Join(p.dir, "orders.crt"), filepath.Join(p.dir, "orders.key")
			good := map[string][]byte{}
			for _, f := range []string{certFile, keyFile, p.caFile()} {
				good[f], _ = os.ReadFile(f)
			}
			otherPKI := newPKI(t)
			foreignCert, foreignKey := otherPKI.issue(t, "orders")
			fresh, _ := p.ca.Issue("orders")
			noID := selfSigned(t)
			bad := []struct {
				name  string
				write map[string][]byte
				want  string
			}{
				{"garbage certificate", map[string][]byte{certFile: []byte("garbage")}, "orders.crt"},
				{"empty key", map[string][]byte{keyFile: nil}, "orders.key"},
				{"key of another certificate", map[string][]byte{certFile: fresh.CertPEM}, "private key does not match"},
				{"certificate of another CA", map[string][]byte{certFile: readFile(t, foreignCert), keyFile: readFile(t, foreignKey)}, "not verified by the CA bundle"},
				{"garbage CA bundle", map[string][]byte{p.caFile(): []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}, "CA bundle"},
				{"no identity", map[string][]byte{certFile: noID.cert, keyFile: noID.key, p.caFile(): noID.cert}, "no spiffe"},
			}
			for _, b := range bad {
				for f, data := range b.write {
					if err := os.WriteFile(f, data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				changed, err := orders.Reload()
				if err == nil || changed || !strings.Contains(err.Error(), b.want) {
					t.Fatalf("%s: Reload: changed %v, %v; want an error containing %q", b.name, changed, err, b.want)
				}
				if _, got := call(); got != serial2 {
					t.Fatalf("%s: the server presented %s, want the kept %s", b.name, got, serial2)
				}
				for f, data := range good {
					if err := os.WriteFile(f, data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			if n := srv.calls.Load(); n < 4 {
				t.Fatalf("endpoint calls %d", n)
			}
		})
	}
}

// TestCARotation adds a new CA to the bundle of a running server: clients with
// certificates of the new CA are accepted from the next handshake on.
func TestCARotation(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			p := newPKI(t)
			next := newPKI(t)
			orders := p.source(t, "orders")
			srv := tr.start(t, orders.ServerTLS())
			// The new client trusts both CAs (its bundle was rotated first) but has a
			// certificate of the new CA, which the server does not trust yet.
			certFile, keyFile := next.issue(t, "gateway")
			bundle := filepath.Join(t.TempDir(), "bundle.crt")
			if err := os.WriteFile(bundle, append(p.ca.CertPEM(), next.ca.CertPEM()...), 0o644); err != nil {
				t.Fatal(err)
			}
			gateway, err := mtls.NewSource(certFile, keyFile, bundle)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = tr.call(t, srv.addr, gateway.ClientTLS())
			refused(t, srv, err, "", "certificate signed by unknown authority")
			if err := os.WriteFile(p.caFile(), append(p.ca.CertPEM(), next.ca.CertPEM()...), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := orders.Reload(); err != nil {
				t.Fatal(err)
			}
			if w, _, err := tr.call(t, srv.addr, gateway.ClientTLS()); err != nil || w.Service != "gateway" {
				t.Fatalf("after the CA rotation: %+v, %v", w, err)
			}
		})
	}
}

// TestRun checks the reload loop: a rewritten certificate is picked up without a call to
// Reload, a bad one is logged once and does not replace it. (The key is written before
// the certificate, so a look between the two may see a mismatched pair; Run does not
// report a refusal that the next look does not confirm.)
func TestRun(t *testing.T) {
	p := newPKI(t)
	var logs syncBuffer
	src := p.source(t, "orders", mtls.WithReloadInterval(5*time.Millisecond),
		mtls.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()

	serial := rewrite(t, p, "orders")
	waitFor(t, "the new certificate", func() bool { return src.Certificate().SerialNumber.Text(16) == serial })
	waitFor(t, "the reload log line", func() bool { return strings.Contains(logs.String(), "mTLS certificate reloaded") })
	if err := os.WriteFile(filepath.Join(p.dir, "orders.crt"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal log line", func() bool { return strings.Contains(logs.String(), "mTLS files refused") })
	if got := src.Certificate().SerialNumber.Text(16); got != serial {
		t.Fatalf("serving %s after a bad file, want %s", got, serial)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := strings.Count(logs.String(), "failed to find any PEM data in certificate input"); n != 1 {
		t.Fatalf("the refusal was logged %d times, want once:\n%s", n, logs.String())
	}
}

func TestNewSourceErrors(t *testing.T) {
	p := newPKI(t)
	certFile, keyFile := p.issue(t, "orders")
	tests := []struct {
		name          string
		cert, key, ca string
		opts          []mtls.Option
		want          string
	}{
		{"missing CA", certFile, keyFile, filepath.Join(p.dir, "nope.crt"), nil, "nope.crt"},
		{"other trust domain", certFile, keyFile, p.caFile(), []mtls.Option{mtls.WithTrustDomain("other.test")}, `not "other.test"`},
		{"bad trust domain", certFile, keyFile, p.caFile(), []mtls.Option{mtls.WithTrustDomain("Bad Domain")}, "trust domain"},
		{"bad allowed peer", certFile, keyFile, p.caFile(), []mtls.Option{mtls.WithAllowedPeers("a/b")}, "service name"},
		{"expired", "", "", p.caFile(), nil, "not verified by the CA bundle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cert == "" {
				is, err := p.ca.Issue("old", mtls.WithValidity(time.Nanosecond))
				if err != nil {
					t.Fatal(err)
				}
				// NotBefore is backdated by minutes; wait out the nanosecond of validity.
				for time.Now().Before(is.Cert.NotAfter.Add(time.Millisecond)) {
					time.Sleep(time.Millisecond)
				}
				if tc.cert, tc.key, err = is.Save(t.TempDir(), "old"); err != nil {
					t.Fatal(err)
				}
			}
			_, err := mtls.NewSource(tc.cert, tc.key, tc.ca, tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSource: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits for cond, for up to 20 s; the loop under test polls every few ms.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHTTP2 checks that ALPN still offers h2 through GetConfigForClient: HTTP clients
// get HTTP/2 over TLS 1.3.
func TestHTTP2(t *testing.T) {
	p := newPKI(t)
	srv := startHTTP(t, p.source(t, "orders").ServerTLS())
	hc := &http.Client{Transport: shttp.NewTransport(p.source(t, "gateway").ClientTLS())}
	resp, err := hc.Get("https://" + srv.addr + "/who")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.TLS.Version != tls.VersionTLS13 {
		t.Fatalf("%s over TLS version %#x, want HTTP/2.0 over TLS 1.3", resp.Proto, resp.TLS.Version)
	}
}
