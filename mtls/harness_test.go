package mtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svckit/svckit/mtls"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// whoService is the test gRPC service; its one method answers the caller's identity.
const whoService = "svckit.test.Who"

// who is what the test endpoint answers: the calling service and its certificate's
// serial number (hex), as the server saw them.
type who struct {
	Service string `json:"service"`
	Serial  string `json:"serial"`
}

// pki is a CA in a temporary directory that issues certificates into it.
type pki struct {
	dir string
	ca  *mtls.CA
}

func newPKI(t testing.TB, opts ...mtls.CAOption) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, created, err := mtls.EnsureCA(dir, opts...)
	if err != nil || !created {
		t.Fatalf("EnsureCA: created %v, %v", created, err)
	}
	return &pki{dir: dir, ca: ca}
}

func (p *pki) caFile() string { return filepath.Join(p.dir, mtls.CACertFile) }

// issue writes a certificate for service and returns its file paths.
func (p *pki) issue(t testing.TB, service string, opts ...mtls.IssueOption) (certFile, keyFile string) {
	t.Helper()
	is, err := p.ca.Issue(service, opts...)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = is.Save(p.dir, service)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// source issues a certificate for service and returns a Source over it.
func (p *pki) source(t testing.TB, service string, opts ...mtls.Option) *mtls.Source {
	t.Helper()
	certFile, keyFile := p.issue(t, service)
	src, err := mtls.NewSource(certFile, keyFile, p.caFile(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// server is a real TLS server on loopback: HTTP or gRPC, serving "who".
type server struct {
	addr  string
	calls atomic.Int64 // endpoint invocations
	// handshakes records the server's failed TLS handshakes, one per line.
	handshakes syncBuffer
}

// recordingCreds records the errors of server handshakes.
type recordingCreds struct {
	credentials.TransportCredentials
	log *syncBuffer
}

func (c recordingCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc, ai, err := c.TransportCredentials.ServerHandshake(conn)
	if err != nil {
		fmt.Fprintf(c.log, "TLS handshake error: %v\n", err)
	}
	return tc, ai, err
}

func whoEndpoint(s *server) func(ctx context.Context, _ string) (who, error) {
	return func(ctx context.Context, _ string) (who, error) {
		s.calls.Add(1)
		id, ok := mtls.PeerFromContext(ctx)
		if !ok {
			return who{Service: "<none>"}, nil
		}
		return who{Service: id.Service, Serial: id.Cert.SerialNumber.Text(16)}, nil
	}
}

// startGRPC serves whoService with TLS cfg (nil: plaintext).
func startGRPC(t testing.TB, cfg *tls.Config) *server {
	t.Helper()
	s := &server{}
	svc := sgrpc.NewServer(whoService)
	sgrpc.Unary(svc, "Who", whoEndpoint(s),
		func(r *wrapperspb.StringValue) (string, error) { return r.GetValue(), nil },
		func(w who) (*wrapperspb.StringValue, error) {
			return wrapperspb.String(w.Service + "/" + w.Serial), nil
		})
	var opts []grpcgo.ServerOption
	if cfg != nil {
		opts = append(opts, grpcgo.Creds(recordingCreds{credentials.NewTLS(cfg), &s.handshakes}))
	}
	g := sgrpc.NewGRPCServer(nil, opts...)
	svc.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	s.addr = ln.Addr().String()
	return s
}

// startHTTP serves GET /who with TLS cfg (nil: plaintext).
func startHTTP(t testing.TB, cfg *tls.Config) *server {
	t.Helper()
	s := &server{}
	h := shttp.NewServer("who")
	shttp.Handle(h, "GET /who", "Who", whoEndpoint(s))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(&s.handshakes, "", 0)}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return s
}

// callGRPC calls Who over a new connection with TLS cfg (nil: plaintext) and returns
// the answer and the serial number of the server's certificate.
func callGRPC(t testing.TB, addr string, cfg *tls.Config) (who, string, error) {
	t.Helper()
	cc, err := grpcgo.NewClient("passthrough:///"+addr, sgrpc.DialCredentials(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var p peer.Peer
	call := sgrpc.UnaryCall(sgrpc.NewClient(cc, whoService, sgrpc.WithCallOptions(grpcgo.Peer(&p))), "Who",
		func(s string) (*wrapperspb.StringValue, error) { return wrapperspb.String(s), nil },
		func(r *wrapperspb.StringValue) (string, error) { return r.GetValue(), nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := call(ctx, "")
	if err != nil {
		return who{}, "", err
	}
	var w who
	w.Service, w.Serial, _ = strings.Cut(out, "/")
	return w, serialOf(p.AuthInfo), nil
}

// callHTTP calls GET /who over a new connection with TLS cfg and returns the answer and
// the serial number of the server's certificate.
func callHTTP(t testing.TB, addr string, cfg *tls.Config) (who, string, error) {
	t.Helper()
	var serverSerial string
	if cfg != nil {
		cfg = cfg.Clone()
		verify := cfg.VerifyConnection
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			serverSerial = cs.PeerCertificates[0].SerialNumber.Text(16)
			if verify != nil {
				return verify(cs)
			}
			return nil
		}
	}
	scheme := "https://"
	if cfg == nil {
		scheme = "http://"
	}
	tr := shttp.NewTransport(cfg)
	defer tr.CloseIdleConnections()
	c, err := shttp.NewClient(scheme+addr, "who", shttp.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := shttp.Call[struct{}, who](c, "GET /who", "Who")(ctx, struct{}{})
	return w, serverSerial, err
}

func serialOf(ai credentials.AuthInfo) string {
	ti, ok := ai.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return ""
	}
	return ti.State.PeerCertificates[0].SerialNumber.Text(16)
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

// pemPair is a certificate and key in PEM.
type pemPair struct{ cert, key []byte }

// selfSigned returns a self-signed CA certificate without an identity.
func selfSigned(t testing.TB) pemPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "no identity"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}
