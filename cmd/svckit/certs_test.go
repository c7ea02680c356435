package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svckit/svckit/mtls"
)

// TestCerts runs `svckit certs init` and `svckit certs issue` and loads what they wrote
// the way a service does: a Source over the certificate, key and CA files.
func TestCerts(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"certs", "init", dir}, &out, &errb); code != 0 {
		t.Fatalf("certs init: exit %d: %s", code, errb.String())
	}
	if code := run([]string{"certs", "issue", "-dir", dir, "-dns", "orders.shop.svc", "orders", "gateway"}, &out, &errb); code != 0 {
		t.Fatalf("certs issue: exit %d: %s", code, errb.String())
	}
	for _, svc := range []string{"orders", "gateway"} {
		src, err := mtls.NewSource(filepath.Join(dir, mtls.CertFile(svc)), filepath.Join(dir, mtls.KeyFile(svc)), filepath.Join(dir, "ca.crt"))
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		if got := src.Identity().Service; got != svc {
			t.Errorf("identity %q, want %q", got, svc)
		}
	}
	if !strings.Contains(strings.Join(mustSource(t, dir, "orders").Certificate().DNSNames, ","), "orders.shop.svc") {
		t.Error("-dns name missing from the certificate")
	}

	// Errors: a missing CA, no service name, an unknown subcommand.
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no CA", []string{"certs", "issue", "-dir", t.TempDir(), "orders"}, "ca"},
		{"no name", []string{"certs", "issue", "-dir", dir}, "usage"},
		{"unknown", []string{"certs", "renew"}, "renew"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code == 0 {
				t.Fatalf("exit 0, want an error")
			}
			if !strings.Contains(strings.ToLower(errb.String()), tc.want) {
				t.Errorf("stderr %q does not mention %q", errb.String(), tc.want)
			}
		})
	}
}

func mustSource(t *testing.T, dir, svc string) *mtls.Source {
	t.Helper()
	src, err := mtls.NewSource(filepath.Join(dir, mtls.CertFile(svc)), filepath.Join(dir, mtls.KeyFile(svc)), filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return src
}
