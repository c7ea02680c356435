package mtls

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/svckit/svckit/transport/meta"
)

// Identity is the service identity a certificate carries in its URI SAN,
// spiffe://TRUST-DOMAIN/svc/SERVICE.
type Identity struct {
	// Service is the service name: "orders".
	Service string
	// TrustDomain is the trust domain: "svckit.local".
	TrustDomain string
	// URI is the whole identity: "spiffe://svckit.local/svc/orders".
	URI string
	// Cert is the certificate the identity was read from, when it was; for its serial
	// number and expiry.
	Cert *x509.Certificate
}

// String returns the identity's URI.
func (id Identity) String() string { return id.URI }

// GetSubject returns the identity's URI, so that meta.Subject (and rate limits keyed by
// it) sees the calling service when mTLS is what authenticated the call.
func (id Identity) GetSubject() (string, error) { return id.URI, nil }

// IsZero reports whether id is the zero Identity.
func (id Identity) IsZero() bool { return id.URI == "" }

func (id Identity) url() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/svc/" + id.Service}
}

// NewIdentity returns the identity of service in trust domain td, checking both names.
func NewIdentity(td, service string) (Identity, error) {
	if err := checkTrustDomain(td); err != nil {
		return Identity{}, err
	}
	if err := checkServiceName(service); err != nil {
		return Identity{}, err
	}
	id := Identity{Service: service, TrustDomain: td}
	id.URI = id.url().String()
	return id, nil
}

var (
	trustDomainRE = regexp.MustCompile(`^[a-z0-9._-]{1,255}$`)
	serviceRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

func checkTrustDomain(td string) error {
	if !trustDomainRE.MatchString(td) {
		return fmt.Errorf("mtls: trust domain %q must be lower-case letters, digits, dots, dashes and underscores", td)
	}
	return nil
}

func checkServiceName(s string) error {
	if !serviceRE.MatchString(s) {
		return fmt.Errorf("mtls: service name %q must be letters, digits, dots, dashes and underscores, starting with a letter or digit", s)
	}
	return nil
}

// ErrNoIdentity is returned by [IdentityOf] for a certificate without a service identity.
var ErrNoIdentity = errors.New("mtls: certificate has no spiffe://TRUST-DOMAIN/svc/SERVICE identity")

// IdentityOf returns the service identity of cert: its one spiffe:// URI SAN, which must
// have the form spiffe://TRUST-DOMAIN/svc/SERVICE. It does not verify cert; use it on
// certificates a TLS handshake verified.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, ErrNoIdentity
	}
	var found *url.URL
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if found != nil {
			return Identity{}, fmt.Errorf("mtls: certificate %q has more than one spiffe:// URI", cert.Subject.CommonName)
		}
		found = u
	}
	if found == nil {
		return Identity{}, ErrNoIdentity
	}
	svc, ok := strings.CutPrefix(found.Path, "/svc/")
	if !ok || found.User != nil || found.Port() != "" || found.RawQuery != "" || found.Fragment != "" ||
		checkTrustDomain(found.Host) != nil || checkServiceName(svc) != nil {
		return Identity{}, fmt.Errorf("%w: %q", ErrNoIdentity, found.String())
	}
	return Identity{Service: svc, TrustDomain: found.Host, URI: found.String(), Cert: cert}, nil
}

type peerKey struct{}

// WithPeer returns a context that carries id as the identity of the calling service, for
// in-process calls and tests; served calls need not, see [PeerFromContext].
func WithPeer(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, peerKey{}, id)
}

// PeerFromContext returns the identity of the service that made the call ctx serves: the
// one set with [WithPeer], or else the identity in the client certificate that the
// server's TLS handshake verified (over HTTP and gRPC alike, read through
// meta.PeerCertificate). It returns false for a call without a verified client
// certificate with an identity — a plaintext call, or a context that is not a served
// call's.
func PeerFromContext(ctx context.Context) (Identity, bool) {
	if id, ok := ctx.Value(peerKey{}).(Identity); ok {
		return id, true
	}
	id, err := IdentityOf(meta.PeerCertificate(ctx))
	if err != nil {
		return Identity{}, false
	}
	return id, true
}
