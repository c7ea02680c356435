package svckit_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/internal/testnet"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// deadAddr returns a loopback address on which nothing listens, held for the test.
func deadAddr(t *testing.T) string {
	t.Helper()
	return testnet.Reserve(t).Addr()
}

// serveHealthOn starts a gRPC health server on the reserved port. It may run on a
// goroutine other than the test's, so a failure to listen is reported with Errorf, not
// Fatalf.
func serveHealthOn(t *testing.T, port *testnet.Reserved) {
	t.Helper()
	ln, err := port.Listen()
	if err != nil {
		t.Errorf("listen %s: %v", port.Addr(), err)
		return
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
}

// checkOnce makes one health call through cc within d.
func checkOnce(cc grpc.ClientConnInterface, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// TestCallWaitsForRestartingPeer calls a peer whose only instance is down and comes back
// a second later: the call waits for it within its deadline instead of failing at once,
// for a fixed list of addresses and for instances found in the registry.
func TestCallWaitsForRestartingPeer(t *testing.T) {
	srv := startNATS(t)
	type natsOnly struct {
		svckit.Config
		svckit.NATSConfig
	}
	for _, target := range []string{"list", "natskv:"} {
		t.Run(target, func(t *testing.T) {
			port := testnet.Reserve(t)
			addr := port.Addr()
			caller, err := newApp(t, "caller", &natsOnly{}, map[string]string{"NATS_URL": srv.ClientURL()})
			if err != nil {
				t.Fatal(err)
			}
			tgt := addr
			if target == "natskv:" {
				registerInstance(t, srv.ClientURL(), discovery.Instance{Service: "callee", Addr: addr})
				tgt = "natskv:///callee"
			}
			cc, err := caller.Dial(context.Background(), "callee", tgt)
			if err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(time.Second, func() { serveHealthOn(t, port) })
			if err := checkOnce(cc, 20*time.Second); err != nil {
				t.Fatalf("the call did not wait for the restarting instance: %v", err)
			}
		})
	}
}

// TestRefusedCallsGoElsewhere runs a peer with one live instance and one whose
// connection is refused: every call succeeds, each refused attempt made again on the live
// instance (it never left, so even a non-idempotent method may be).
func TestRefusedCallsGoElsewhere(t *testing.T) {
	srv := startNATS(t)
	live := startHealthServer(t)
	registerInstance(t, srv.ClientURL(), discovery.Instance{Service: "callee", ID: "dead", Addr: deadAddr(t)})
	registerInstance(t, srv.ClientURL(), discovery.Instance{Service: "callee", ID: "live", Addr: live})
	type natsOnly struct {
		svckit.Config
		svckit.NATSConfig
	}
	caller, err := newApp(t, "caller", &natsOnly{}, map[string]string{"NATS_URL": srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := caller.Dial(context.Background(), "callee", "natskv:")
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the balancer knows both instances.
	time.Sleep(500 * time.Millisecond)
	for i := range 50 {
		if err := checkOnce(cc, 10*time.Second); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

// registerInstance registers inst in the natskv registry on url until the test ends.
func registerInstance(t *testing.T, url string, inst discovery.Instance) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	reg, err := natskv.New(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	r, err := reg.Register(ctx, inst, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Deregister(context.Background()) })
}

// halfFailingHealth answers every other Check with Unavailable and counts the calls that
// reach it.
type halfFailingHealth struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int64
}

func (h *halfFailingHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if h.calls.Add(1)%2 == 0 {
		return nil, status.Error(codes.Unavailable, "half of the calls fail")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// TestRetryAmplificationHalfFailingPeer offers 2,000 calls of an idempotent method through
// the App's client stack (retry with its budget, breaker) to a peer that fails half of the
// attempts with Unavailable, and counts the attempts that reach the peer: retries may
// add at most 10% to the offered load (the budget's ratio), however many calls fail.
func TestRetryAmplificationHalfFailingPeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer := &halfFailingHealth{}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, peer)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	caller, err := newApp(t, "caller", &struct{ svckit.Config }{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := caller.Dial(context.Background(), "callee", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := sgrpc.NewClient(cc, "grpc.health.v1.Health", caller.GRPCClientOptions()...)
	check := sgrpc.UnaryCall(c, "Check",
		func(struct{}) (*healthpb.HealthCheckRequest, error) { return &healthpb.HealthCheckRequest{}, nil },
		func(r *healthpb.HealthCheckResponse) (string, error) { return r.GetStatus().String(), nil },
		sgrpc.Idempotent())
	const offered, workers = 2000, 4
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range offered / workers {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := check(ctx, struct{}{}); err != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	attempts := peer.calls.Load()
	ratio := float64(attempts) / offered
	t.Logf("offered %d calls to a peer failing half of them: %d attempts reached it (amplification %.3f), %d calls succeeded, %d failed",
		offered, attempts, ratio, ok.Load(), failed.Load())
	if ratio > 1.1 {
		t.Fatalf("retry amplification %.3f under a half-failing peer, want at most 1.1", ratio)
	}
	if ok.Load() <= offered/2 {
		t.Fatalf("%d of %d calls succeeded, as many as without retries: the client chain retried none", ok.Load(), offered)
	}
}
