package deploy

import (
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/svckit/svckit/mtls"
)

// mountMTLS stands in, for a service started outside a cluster, for the Secret that the
// prod overlay mounts for its mTLS: it issues the service a certificate from a new CA,
// writes it under a temporary directory with the Secret's file names (tls.crt, tls.key,
// ca.crt, as cert-manager writes them) and points env's TLS_CERT, TLS_KEY and TLS_CA
// there. It does nothing when env has no TLS_CERT.
func mountMTLS(t *testing.T, service string, env map[string]string) {
	t.Helper()
	if env[envTLSCert] == "" {
		return
	}
	ca, err := mtls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue(service)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string][]byte{envTLSCert: is.CertPEM, envTLSKey: is.KeyPEM, envTLSCA: ca.CertPEM()}
	for _, f := range mtlsFiles {
		p := filepath.Join(dir, path.Base(env[f.env]))
		if err := os.WriteFile(p, files[f.env], 0o600); err != nil {
			t.Fatal(err)
		}
		env[f.env] = p
	}
}

// TestMTLSFiles checks that the files the prod overlay points a service's TLS settings
// at, laid out as the mounted cert-manager Secret lays them out, are what package mtls
// loads, with the identity the service's Certificate asks for.
func TestMTLSFiles(t *testing.T) {
	sys := testSystem(t)
	objs := renderObjects(t, sys, Prod)
	env := map[string]string{}
	for _, f := range mtlsFiles {
		e := envEntry(objs, "stock", f.env)
		if e == nil {
			t.Fatalf("stock has no %s", f.env)
		}
		env[f.env] = e["value"].(string)
		if want := mtlsDir + "/" + f.key; env[f.env] != want {
			t.Errorf("%s = %s, want %s", f.env, env[f.env], want)
		}
	}
	mountMTLS(t, "stock", env)
	src, err := mtls.NewSource(env[envTLSCert], env[envTLSKey], env[envTLSCA])
	if err != nil {
		t.Fatal(err)
	}
	uris := asList(find(objs, "Certificate/stock-mtls").Get("spec", "uris"))
	if len(uris) != 1 || src.Identity().URI != uris[0] {
		t.Errorf("identity %s; the Certificate asks for %v", src.Identity().URI, uris)
	}
}
