package mtls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DefaultTrustDomain is the trust domain of identities when none is given.
const DefaultTrustDomain = "svckit.local"

// DefaultCAValidity is how long a new development CA is valid.
const DefaultCAValidity = 5 * 365 * 24 * time.Hour

// DefaultCertValidity is how long an issued service certificate is valid. Certificates
// are meant to be re-issued well before they expire; the [Source] of a running service
// picks the new files up.
const DefaultCertValidity = 7 * 24 * time.Hour

// backdate is how far NotBefore lies in the past, for clocks that differ a little.
const backdate = 5 * time.Minute

// The file names of a CA and of service certificates in a directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// CertFile returns the certificate file name of service in a directory: "orders.crt".
func CertFile(service string) string { return service + ".crt" }

// KeyFile returns the private key file name of service in a directory: "orders.key".
func KeyFile(service string) string { return service + ".key" }

// CA is a certificate authority that issues service certificates: a development CA made
// by [NewCA] or read by [LoadCA]. Its certificate is name-constrained to its trust
// domain, so the identities it can vouch for are spiffe://TRUST-DOMAIN/... only.
type CA struct {
	// Cert is the CA's self-signed certificate.
	Cert *x509.Certificate
	// Key is the CA's private key.
	Key *ecdsa.PrivateKey
	// TrustDomain is the trust domain of the identities it issues.
	TrustDomain string
}

// CAOption configures [NewCA] and [EnsureCA].
type CAOption func(*caConfig)

type caConfig struct {
	trustDomain string
	validity    time.Duration
	now         func() time.Time
}

// WithCATrustDomain sets the trust domain of a new CA (default [DefaultTrustDomain]).
// [EnsureCA] checks that an existing CA has it.
func WithCATrustDomain(td string) CAOption { return func(c *caConfig) { c.trustDomain = td } }

// WithCAValidity sets how long a new CA is valid (default [DefaultCAValidity]).
func WithCAValidity(d time.Duration) CAOption { return func(c *caConfig) { c.validity = d } }

func newCAConfig(opts []CAOption) (caConfig, error) {
	c := caConfig{trustDomain: DefaultTrustDomain, validity: DefaultCAValidity, now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	if err := checkTrustDomain(c.trustDomain); err != nil {
		return c, err
	}
	if c.validity <= 0 {
		return c, fmt.Errorf("mtls: CA validity %s must be positive", c.validity)
	}
	return c, nil
}

// NewCA creates a CA with a fresh ECDSA P-256 key, in memory. [CA.Save] writes it.
func NewCA(opts ...CAOption) (*CA, error) {
	cfg, err := newCAConfig(opts)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := cfg.now()
	skid := keyID(&key.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"svckit development"}, CommonName: "svckit development CA " + cfg.trustDomain},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(cfg.validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
		PermittedURIDomains:   []string{cfg.trustDomain},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, TrustDomain: cfg.trustDomain}, nil
}

// CertPEM returns the CA certificate in PEM, the content of ca.crt that every service
// trusts.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Save writes the CA to dir as ca.crt and ca.key (mode 0600), creating dir (mode 0700)
// if needed. Each file is written to a temporary file and renamed into place.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mtls: CA directory: %w", err)
	}
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o644)
}

// LoadCA reads the CA saved in dir (ca.crt and ca.key).
func LoadCA(dir string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA: %w", err)
	}
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA %s: %w", certFile, err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("mtls: CA %s: want one certificate, found %d", certFile, len(certs))
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("mtls: CA %s is not a CA certificate", certFile)
	}
	key, err := parseECKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("mtls: CA %s: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("mtls: CA %s does not belong to %s", keyFile, certFile)
	}
	td := DefaultTrustDomain
	if len(cert.PermittedURIDomains) == 1 {
		td = cert.PermittedURIDomains[0]
	}
	return &CA{Cert: cert, Key: key, TrustDomain: td}, nil
}

// EnsureCA returns the CA saved in dir, creating and saving a new one if dir has none
// (created is then true). An existing CA must be valid now and have the trust domain of
// opts; its other options are ignored.
func EnsureCA(dir string, opts ...CAOption) (ca *CA, created bool, err error) {
	cfg, err := newCAConfig(opts)
	if err != nil {
		return nil, false, err
	}
	_, errCert := os.Stat(filepath.Join(dir, CACertFile))
	_, errKey := os.Stat(filepath.Join(dir, CAKeyFile))
	if errors.Is(errCert, os.ErrNotExist) && errors.Is(errKey, os.ErrNotExist) {
		ca, err := NewCA(opts...)
		if err != nil {
			return nil, false, err
		}
		if err := ca.Save(dir); err != nil {
			return nil, false, err
		}
		return ca, true, nil
	}
	ca, err = LoadCA(dir)
	if err != nil {
		return nil, false, err
	}
	if ca.TrustDomain != cfg.trustDomain {
		return nil, false, fmt.Errorf("mtls: the CA in %s is for trust domain %q, not %q", dir, ca.TrustDomain, cfg.trustDomain)
	}
	if now := cfg.now(); now.After(ca.Cert.NotAfter) {
		return nil, false, fmt.Errorf("mtls: the CA in %s expired on %s; remove %s and %s to create a new one",
			dir, ca.Cert.NotAfter.Format(time.DateOnly), CACertFile, CAKeyFile)
	}
	return ca, false, nil
}

// IssueOption configures [CA.Issue].
type IssueOption func(*issueConfig)

type issueConfig struct {
	validity time.Duration
	dnsNames []string
	ips      []net.IP
	now      func() time.Time
}

// WithValidity sets how long the certificate is valid (default [DefaultCertValidity]).
// It ends with the CA's validity at the latest.
func WithValidity(d time.Duration) IssueOption { return func(c *issueConfig) { c.validity = d } }

// WithDNSNames adds DNS names to the certificate, beside the service name and localhost.
func WithDNSNames(names ...string) IssueOption {
	return func(c *issueConfig) { c.dnsNames = append(c.dnsNames, names...) }
}

// WithIPs adds IP addresses to the certificate, beside 127.0.0.1 and ::1.
func WithIPs(ips ...net.IP) IssueOption {
	return func(c *issueConfig) { c.ips = append(c.ips, ips...) }
}

// Issued is a service certificate with its private key, in PEM.
type Issued struct {
	// Cert is the parsed certificate.
	Cert *x509.Certificate
	// CertPEM is the certificate, the content of NAME.crt.
	CertPEM []byte
	// KeyPEM is the PKCS #8 private key, the content of NAME.key.
	KeyPEM []byte
}

// Issue creates a certificate for service with a fresh ECDSA P-256 key. Its identity is
// the URI SAN spiffe://TRUST-DOMAIN/svc/SERVICE; its DNS SANs are the service name and
// localhost, its IP SANs 127.0.0.1 and ::1 (more with [WithDNSNames] and [WithIPs]); it is
// good for both server and client authentication.
func (ca *CA) Issue(service string, opts ...IssueOption) (*Issued, error) {
	if err := checkServiceName(service); err != nil {
		return nil, err
	}
	cfg := issueConfig{validity: DefaultCertValidity, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.validity <= 0 {
		return nil, fmt.Errorf("mtls: certificate validity %s must be positive", cfg.validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mtls: key for %s: %w", service, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := cfg.now()
	notAfter := now.Add(cfg.validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	id := Identity{Service: service, TrustDomain: ca.TrustDomain}
	u := id.url()
	dns := []string{service, "localhost"}
	for _, n := range cfg.dnsNames {
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	for _, ip := range cfg.ips {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"svckit"}, CommonName: service},
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              dns,
		IPAddresses:           ips,
		AuthorityKeyId:        ca.Cert.SubjectKeyId,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("mtls: certificate for %s: %w", service, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mtls: certificate for %s: %w", service, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// Save writes the certificate and key to dir as SERVICE.crt and SERVICE.key (mode 0600),
// key first, each through a temporary file renamed into place, and returns their paths.
// A running [Source] that watches the files picks them up.
func (is *Issued) Save(dir, service string) (certFile, keyFile string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("mtls: certificate directory: %w", err)
	}
	certFile, keyFile = filepath.Join(dir, CertFile(service)), filepath.Join(dir, KeyFile(service))
	if err := writeFileAtomic(keyFile, is.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certFile, is.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// IssueFiles issues a certificate for service with ca and saves it in dir, as
// `svckit certs issue` does. It returns the certificate.
func (ca *CA) IssueFiles(dir, service string, opts ...IssueOption) (*Issued, error) {
	is, err := ca.Issue(service, opts...)
	if err != nil {
		return nil, err
	}
	if _, _, err := is.Save(dir, service); err != nil {
		return nil, err
	}
	return is, nil
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("mtls: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// keyID is the subject key identifier of pub: a truncated SHA-256 of its encoding.
func keyID(pub *ecdsa.PublicKey) []byte {
	b, err := pub.Bytes()
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:20]
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("mtls: encoding a key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseECKey(b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM private key")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ECDSA", key)
	}
	return ec, nil
}

// parseCerts returns every CERTIFICATE block of b, in order.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for len(bytes.TrimSpace(b)) > 0 {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return nil, errors.New("not PEM")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it to path, so
// readers see the old or the new content, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("mtls: writing %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(perm), f.Close())
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("mtls: writing %s: %w", path, err)
	}
	return nil
}
