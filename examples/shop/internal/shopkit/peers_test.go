package shopkit

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/svckit/svckit"
)

func testApp(t *testing.T) *svckit.App {
	t.Helper()
	app, err := svckit.New(context.Background(), "shopkit-test", &svckit.Config{}, svckit.Options{
		Args: []string{}, Env: func(string) (string, bool) { return "", false }, Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// TestPeersDialDNS finds a gRPC server through a dns:/// target and calls it through the
// balanced connection.
func TestPeersDialDNS(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	ctx := context.Background()
	p, err := NewPeers(ctx, testApp(t), Network{})
	if err != nil {
		t.Fatal(err)
	}
	// An IP address needs no DNS server: the watcher's lookup returns it as it is.
	cc, err := p.Dial(ctx, "health", "dns:///"+lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cc.(*balancedConn); !ok {
		t.Fatalf("dns target dialled as %T, want a balanced connection", cc)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil {
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("status %v", resp.GetStatus())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer through the dns target: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPeersTargets checks how targets and the announce setting are read.
func TestPeersTargets(t *testing.T) {
	ctx := context.Background()
	app := testApp(t)
	if _, err := NewPeers(ctx, app, Network{Announce: "etcd"}); err == nil {
		t.Error("ANNOUNCE=etcd accepted")
	}
	if _, err := NewPeers(ctx, app, Network{Announce: "natskv"}); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("ANNOUNCE=natskv without NATS_URL: %v", err)
	}
	p, err := NewPeers(ctx, app, Network{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := p.Dial(ctx, "orders", "127.0.0.1:1, 127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cc.(*grpc.ClientConn); !ok {
		t.Errorf("a fixed list dialled as %T, want *grpc.ClientConn as Dial makes it", cc)
	}
	for target, want := range map[string]string{
		"natskv:":       "NATS_URL",
		"dns:///":       "names no host:port",
		"dns:///orders": "neither an SRV name nor host:port",
		"":              "no address for orders",
	} {
		if _, err := p.Dial(ctx, "orders", target); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("target %q: %v, want an error with %q", target, err, want)
		}
	}
}
