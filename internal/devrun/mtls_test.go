package devrun_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit/internal/devrun"
	"github.com/svckit/svckit/mtls"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// TestSystemMTLS runs a system whose manifest turns mTLS on: the runner makes a CA in
// the state directory, issues certificates, and the child processes serve HTTP and gRPC
// that require client certificates — except the public service's HTTP entry.
func TestSystemMTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	out := &syncWriter{}
	ctx := context.Background()
	state := t.TempDir()
	sys, err := devrun.Start(ctx, devrun.Options{
		Dir: "testdata/mtls", StateDir: state, Out: out, Quiet: true,
		Backoff: devrun.Backoff{Min: 50 * time.Millisecond, Max: time.Second, Stable: time.Minute},
		Grace:   5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sys.Stop(ctx) }()
	readyCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if sys.CertDir != filepath.Join(state, "certs") || sys.ClientTLS() == nil {
		t.Fatalf("CertDir %q, ClientTLS %v", sys.CertDir, sys.ClientTLS())
	}
	if st, err := os.Stat(filepath.Join(sys.CertDir, mtls.CAKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v", err)
	}
	in, edge := sys.Instance("addsvc-1"), sys.Instance("edge-1")
	for _, kv := range []string{
		"TLS_CERT=" + filepath.Join(sys.CertDir, "addsvc.crt"),
		"TLS_KEY=" + filepath.Join(sys.CertDir, "addsvc.key"),
		"TLS_CA=" + filepath.Join(sys.CertDir, "ca.crt"),
	} {
		if !slices.Contains(in.Env, kv) {
			t.Errorf("addsvc's environment lacks %s", kv)
		}
	}
	if slices.Contains(in.Env, "TLS_HTTP=plain") || !slices.Contains(edge.Env, "TLS_HTTP=plain") {
		t.Error("TLS_HTTP=plain must be set for the public service only")
	}

	post := func(url string, hc *http.Client) (string, error) {
		resp, err := hc.Post(url+"/sum", "application/json", strings.NewReader(`{"a":1,"b":2}`))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), nil
	}
	withCert := &http.Client{Transport: shttp.NewTransport(sys.ClientTLS())}
	noCert := &http.Client{Transport: shttp.NewTransport(&tls.Config{InsecureSkipVerify: true})}
	if got, err := post("https://"+in.Addrs["http"], withCert); err != nil || got != `{"v":3}` {
		t.Fatalf("HTTP with the runner's certificate: %q, %v", got, err)
	}
	if got, err := post("https://"+in.Addrs["http"], noCert); err == nil {
		t.Fatalf("HTTP without a certificate accepted: %q", got)
	}
	if got, err := post("http://"+in.Addrs["http"], http.DefaultClient); err != nil || !strings.Contains(got, "HTTPS server") {
		t.Fatalf("plain HTTP: %q, %v; want net/http's 400", got, err)
	}
	// The public service's entry stays plain HTTP.
	if got, err := post(sys.PublicURL(), http.DefaultClient); err != nil || got != `{"v":3}` {
		t.Fatalf("the public entry %s: %q, %v", sys.PublicURL(), got, err)
	}
	// gRPC requires the certificate on every service, the public one too.
	for _, target := range []*devrun.Instance{in, edge} {
		check := func(creds grpc.DialOption) error {
			cc, err := grpc.NewClient("passthrough:///"+target.Addrs["grpc"], creds)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}
		if err := check(sgrpc.DialCredentials(sys.ClientTLS())); err != nil {
			t.Fatalf("%s: gRPC health with the certificate: %v", target.ID, err)
		}
		if err := check(sgrpc.DialCredentials(nil)); status.Code(err) != codes.Unavailable {
			t.Fatalf("%s: plaintext gRPC health: %v, want Unavailable", target.ID, err)
		}
	}
	// The child logged its identity at start (its log lines are buffered briefly).
	eventually(t, "addsvc's mTLS log line", func() bool {
		return len(sys.Logs.Query(devrun.LogFilter{Service: "addsvc", Text: `"identity":"spiffe://svckit.local/svc/addsvc"`})) > 0
	})
}
