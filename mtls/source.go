package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often [Source.Run] looks at the files again.
const DefaultReloadInterval = time.Second

// Source serves a service's certificate and its trusted CAs from three PEM files — the
// certificate (with any intermediates), its private key and the CA bundle — and picks up
// new files without a restart. Its [Source.ServerTLS] and [Source.ClientTLS] configs read
// the current certificate and CA pool at every handshake, so a rotated certificate is
// presented, and a rotated CA bundle trusted, from the next new connection on;
// connections already open keep going.
//
// Reloading: [Source.Run] re-reads the three files every interval and, when their
// content changed, parses and checks them and swaps them in atomically. Polling the
// content (rather than watching for file events or checking on every handshake) keeps
// file I/O and error handling off the handshake path, works with the symlink swaps of
// Kubernetes Secret mounts, and costs three small reads a second. New files that do not
// parse, whose key does not match the certificate, whose certificate the CA bundle does
// not verify or that lack an identity are refused: the old certificate keeps serving and
// the error is returned by [Source.Reload] and logged by Run. A writer that replaces the
// certificate and the key one after the other may be seen half-way once; the next look
// finds the pair complete.
type Source struct {
	certFile, keyFile, caFile string
	trustDomain               string
	allow                     []string
	logger                    *slog.Logger
	interval                  time.Duration
	nextProtos                []string

	mu  sync.Mutex // serializes reloads
	cur atomic.Pointer[generation]
}

// generation is one loaded set of files.
type generation struct {
	cert   *tls.Certificate
	leaf   *x509.Certificate
	id     Identity
	pool   *x509.CertPool
	server *tls.Config
	sum    [sha256.Size]byte
}

// Option configures a [Source].
type Option func(*Source)

// WithTrustDomain sets the trust domain whose identities the source accepts from peers
// and requires of its own certificate. The default is the trust domain of its own
// certificate's identity.
func WithTrustDomain(td string) Option { return func(s *Source) { s.trustDomain = td } }

// WithAllowedPeers makes the server side accept only clients whose identity names one of
// services; the handshake of any other client fails. The default accepts every service
// of the trust domain. Per-endpoint rules belong in auth.Services.
func WithAllowedPeers(services ...string) Option {
	return func(s *Source) { s.allow = append(s.allow, services...) }
}

// WithLogger sets where [Source.Run] reports reloads and refused files (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(s *Source) { s.logger = l } }

// WithReloadInterval sets how often [Source.Run] looks at the files (default
// [DefaultReloadInterval]).
func WithReloadInterval(d time.Duration) Option { return func(s *Source) { s.interval = d } }

// NewSource loads the certificate, key and CA files and returns a source that serves
// them. The certificate must carry an identity (spiffe://TRUST-DOMAIN/svc/SERVICE), be
// valid now and be verified by the CA bundle.
func NewSource(certFile, keyFile, caFile string, opts ...Option) (*Source, error) {
	s := &Source{
		certFile: certFile, keyFile: keyFile, caFile: caFile,
		logger:     slog.New(slog.DiscardHandler),
		interval:   DefaultReloadInterval,
		nextProtos: []string{"h2", "http/1.1"},
	}
	for _, o := range opts {
		o(s)
	}
	if s.trustDomain != "" {
		if err := checkTrustDomain(s.trustDomain); err != nil {
			return nil, err
		}
	}
	for _, svc := range s.allow {
		if err := checkServiceName(svc); err != nil {
			return nil, err
		}
	}
	if s.interval <= 0 {
		s.interval = DefaultReloadInterval
	}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files now and, if their content changed and is good, serves it from
// the next handshake on. It reports whether it swapped in new files. On an error the
// files served before stay in place.
func (s *Source) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var files [3][]byte
	for i, f := range []string{s.certFile, s.keyFile, s.caFile} {
		b, err := os.ReadFile(f)
		if err != nil {
			return false, fmt.Errorf("mtls: %w", err)
		}
		files[i] = b
	}
	h := sha256.New()
	for _, b := range files {
		_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	old := s.cur.Load()
	if old != nil && old.sum == sum {
		return false, nil
	}
	g, err := s.load(files[0], files[1], files[2])
	if err != nil {
		return false, err
	}
	g.sum = sum
	s.cur.Store(g)
	if old != nil {
		s.logger.Info("mTLS certificate reloaded", slog.String("identity", g.id.URI),
			slog.String("serial", g.leaf.SerialNumber.Text(16)), slog.Time("not_after", g.leaf.NotAfter))
	}
	return true, nil
}

// load parses and checks one set of files.
func (s *Source) load(certPEM, keyPEM, caPEM []byte) (*generation, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: certificate %s with key %s: %w", s.certFile, s.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("mtls: certificate %s: %w", s.certFile, err)
		}
		cert.Leaf = leaf
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA bundle %s: %w", s.caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("mtls: certificate %s: intermediate: %w", s.certFile, err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("mtls: certificate %s is not verified by the CA bundle %s: %w", s.certFile, s.caFile, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("mtls: certificate %s: %w", s.certFile, err)
	}
	if s.trustDomain != "" && id.TrustDomain != s.trustDomain {
		return nil, fmt.Errorf("mtls: certificate %s is for trust domain %q, not %q", s.certFile, id.TrustDomain, s.trustDomain)
	}
	g := &generation{cert: &cert, leaf: leaf, id: id, pool: pool}
	g.server = &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        pool,
		NextProtos:       s.nextProtos,
		VerifyConnection: func(cs tls.ConnectionState) error { return s.checkClient(g, cs) },
	}
	return g, nil
}

// checkClient is the server's check of a client after chain verification: an identity
// of the trust domain and, with an allow-list, one of the allowed services.
func (s *Source) checkClient(g *generation, cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return errors.New("mtls: no verified client certificate")
	}
	id, err := IdentityOf(cs.VerifiedChains[0][0])
	if err != nil {
		return err
	}
	if id.TrustDomain != g.id.TrustDomain {
		return fmt.Errorf("mtls: client %s is not of trust domain %q", id.URI, g.id.TrustDomain)
	}
	if len(s.allow) > 0 && !slices.Contains(s.allow, id.Service) {
		return fmt.Errorf("mtls: client %s is not allowed", id.URI)
	}
	return nil
}

// ServerTLS returns the configuration of a server that requires a client certificate
// verified by the current CA bundle and carrying an identity of the trust domain (and of
// an allowed service, with [WithAllowedPeers]). It presents the current certificate.
// TLS 1.3 only; ALPN offers h2 and http/1.1. Use it for an http.Server (through
// tls.NewListener) or gRPC credentials (credentials.NewTLS). The returned config works
// through GetConfigForClient, so every handshake sees the files loaded last.
func (s *Source) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: s.nextProtos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return s.cur.Load().server, nil
		},
	}
}

// ClientTLS returns the configuration of a client that presents the current certificate
// and accepts a server whose certificate the current CA bundle verifies (for server
// authentication) and whose identity is of the trust domain and, when servers are given,
// names one of them. The server is recognised by its identity, not its host name, so
// addresses that the certificate does not list (pod IPs) work.
//
// The standard verification is replaced by that check in VerifyConnection, which is why
// the config sets InsecureSkipVerify: the chain, validity period, key usage and identity
// are all still verified, against the CA bundle loaded last.
func (s *Source) ClientTLS(servers ...string) *tls.Config {
	servers = slices.Clone(servers)
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.cur.Load().cert, nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error { return s.checkServer(cs, servers) },
	}
}

// checkServer verifies a server's chain against the current CA pool and its identity.
func (s *Source) checkServer(cs tls.ConnectionState, servers []string) error {
	g := s.cur.Load()
	if len(cs.PeerCertificates) == 0 {
		return errors.New("mtls: server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	var inter *x509.CertPool
	if len(cs.PeerCertificates) > 1 {
		inter = x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: g.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("mtls: server certificate: %w", err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return err
	}
	if id.TrustDomain != g.id.TrustDomain {
		return fmt.Errorf("mtls: server %s is not of trust domain %q", id.URI, g.id.TrustDomain)
	}
	if len(servers) > 0 && !slices.Contains(servers, id.Service) {
		return fmt.Errorf("mtls: server is %s, want one of %v", id.URI, servers)
	}
	return nil
}

// Run looks at the files every interval until ctx ends and reloads them when they
// changed, and returns nil when ctx ends. It logs a refused set of files once, when two
// looks in a row refused it, so that a certificate and key caught half-way through a
// rotation are not reported. Run it beside the servers (svckit.App does, as a worker).
func (s *Source) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	var prevErr, logged string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		_, err := s.Reload()
		if err == nil {
			prevErr, logged = "", ""
			continue
		}
		msg := err.Error()
		seen := msg == prevErr
		prevErr = msg
		if seen && msg != logged {
			logged = msg
			cur := s.Certificate()
			s.logger.WarnContext(ctx, "mTLS files refused; the previous certificate stays in use",
				slog.String("error", msg), slog.String("serial", cur.SerialNumber.Text(16)), slog.Time("not_after", cur.NotAfter))
		}
	}
}

// Certificate returns the certificate served now.
func (s *Source) Certificate() *x509.Certificate { return s.cur.Load().leaf }

// Identity returns the identity of the certificate served now.
func (s *Source) Identity() Identity { return s.cur.Load().id }

// CAs returns the CA pool that verifies peers now.
func (s *Source) CAs() *x509.CertPool { return s.cur.Load().pool }
