package devrun

import (
	"crypto/tls"
	"fmt"
	"path/filepath"

	"github.com/svckit/svckit/mtls"
)

// devIdentity is the service name of the certificate the runner itself holds, for the
// dashboard and tests to call services whose listeners require client certificates.
const devIdentity = "svckit-dev"

// setupMTLS makes sure the system's development CA exists in stateDir/certs, issues a
// fresh certificate for every service and for the runner, and returns the environment
// that points each service at its files (TLS_CERT, TLS_KEY, TLS_CA). A public service
// keeps its HTTP listener plain (TLS_HTTP=plain), so that the printed entry URL works
// with curl; its gRPC listener and its calls to the others use mTLS.
func (s *System) setupMTLS(stateDir string) (map[string][]string, error) {
	dir := filepath.Join(stateDir, "certs")
	ca, created, err := mtls.EnsureCA(dir)
	if err != nil {
		return nil, fmt.Errorf("mTLS: %w", err)
	}
	if created {
		s.printf("created a development CA in %s", dir)
	}
	env := map[string][]string{}
	caFile := filepath.Join(dir, mtls.CACertFile)
	for _, svc := range s.Manifest.Services {
		if _, err := ca.IssueFiles(dir, svc.Name); err != nil {
			return nil, fmt.Errorf("mTLS: %w", err)
		}
		env[svc.Name] = []string{
			"TLS_CERT=" + filepath.Join(dir, mtls.CertFile(svc.Name)),
			"TLS_KEY=" + filepath.Join(dir, mtls.KeyFile(svc.Name)),
			"TLS_CA=" + caFile,
		}
		if svc.Public {
			env[svc.Name] = append(env[svc.Name], "TLS_HTTP=plain")
		}
	}
	if _, err := ca.IssueFiles(dir, devIdentity); err != nil {
		return nil, fmt.Errorf("mTLS: %w", err)
	}
	src, err := mtls.NewSource(filepath.Join(dir, mtls.CertFile(devIdentity)), filepath.Join(dir, mtls.KeyFile(devIdentity)), caFile)
	if err != nil {
		return nil, fmt.Errorf("mTLS: %w", err)
	}
	s.tls, s.CertDir = src, dir
	s.printf("mTLS on: certificates for %d services in %s, trust domain %s", len(s.Manifest.Services), dir, ca.TrustDomain)
	return env, nil
}

// ClientTLS returns the TLS configuration for calling the system's services when the
// manifest turns mTLS on: it presents the runner's own certificate (identity
// spiffe://svckit.local/svc/svckit-dev). It returns nil when mTLS is off.
func (s *System) ClientTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.ClientTLS()
}
