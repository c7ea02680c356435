package natskv_test

import (
	"context"
	neturl "net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/discoverytest"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/natsserver"
)

// connect returns a client connection to url that reconnects for ever, closed at the end
// of the test.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newRegistry(t testing.TB, nc *nats.Conn, opts ...natskv.Option) *natskv.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := natskv.New(ctx, nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func startServer(t testing.TB, dir string, opts ...natsserver.Option) *natsserver.Server {
	t.Helper()
	s, err := natsserver.Start(t.Context(), dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// TestSuiteEmbedded runs the registry suite against the embedded NATS server.
func TestSuiteEmbedded(t *testing.T) {
	s := startServer(t, t.TempDir())
	discoverytest.Run(t, discoverytest.Backend{
		New: func(t *testing.T) discovery.Registry { return newRegistry(t, connect(t, s.ClientURL())) },
		NewCrashable: func(t *testing.T) (discovery.Registry, func()) {
			nc, err := nats.Connect(s.ClientURL())
			if err != nil {
				t.Fatal(err)
			}
			return newRegistry(t, nc), nc.Close
		},
		TTL: time.Second,
	})
}

// TestReRegisterAfterRestart stops the server for longer than the TTL, losing the bucket
// (memory storage), and starts it again on the same port: the registration comes back by
// itself and the watcher sees it again.
func TestReRegisterAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	url := s.ClientURL()
	ctx := t.Context()
	registrations := make(chan int, 10)
	r := newRegistry(t, connect(t, url), natskv.WithKeepOptions(discovery.KeepOptions{
		OnRegister: func(n int) { registrations <- n },
		MaxBackoff: 200 * time.Millisecond,
	}))
	reg, err := r.Register(ctx, discovery.Instance{Service: "addsvc", ID: "a", Addr: "127.0.0.1:1"}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	<-registrations
	ch, err := newRegistry(t, connect(t, url)).Watch(ctx, "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	w := discoverytest.Follow(ch)
	w.Expect(t, 10*time.Second, "a")

	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	// The same port and admin password: the clients reconnect with what they had.
	s2 := startServer(t, dir, natsserver.WithPort(portOf(t, url)), natsserver.WithAdmin(s.AdminPassword()))
	if s2.ClientURL() != url {
		t.Fatalf("restarted on %s, want %s", s2.ClientURL(), url)
	}
	select {
	case n := <-registrations:
		if n < 2 {
			t.Errorf("registration number %d after the restart", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not registered again after the restart")
	}
	w.Expect(t, 20*time.Second, "a")
	if err := reg.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	w.Expect(t, 10*time.Second)
}

func portOf(t testing.TB, url string) int {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// TestCluster runs the registry on a three-node cluster with a replicated bucket: clients
// connected to different nodes register and watch; one node is stopped mid-test, and
// registrations, heartbeats, new registrations and deregistrations keep working.
func TestCluster(t *testing.T) {
	ctx := t.Context()
	c, err := natsserver.StartCluster(ctx, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })

	// Each client prefers a different node and knows all of them.
	client := func(i int) *natskv.Registry {
		nc := connect(t, c.URL(i)+","+c.URLs())
		return newRegistry(t, nc, natskv.WithReplicas(3))
	}
	r0, r1, r2 := client(0), client(1), client(2)
	ch, err := r2.Watch(ctx, "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	w := discoverytest.Follow(ch)
	w.Expect(t, 10*time.Second)

	const ttl = 2 * time.Second
	regA, err := r0.Register(ctx, discovery.Instance{Service: "addsvc", ID: "a", Addr: "127.0.0.1:1"}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	regB, err := r1.Register(ctx, discovery.Instance{Service: "addsvc", ID: "b", Addr: "127.0.0.1:2"}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	w.Expect(t, 10*time.Second, "a", "b")

	// Stop the node that instance a's client and the stream leader may be on.
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// Heartbeats go on through the other nodes for several TTLs.
	time.Sleep(3 * ttl)
	w.Expect(t, 10*time.Second, "a", "b")
	regC, err := registerRetrying(ctx, r2, discovery.Instance{Service: "addsvc", ID: "c", Addr: "127.0.0.1:3"}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	w.Expect(t, 10*time.Second, "a", "b", "c")
	if err := regB.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	w.Expect(t, 10*time.Second, "a", "c")

	// The node comes back and the registry still works through it.
	if err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, reg := range []discovery.Registration{regA, regC} {
		if err := reg.Deregister(ctx); err != nil {
			t.Fatal(err)
		}
	}
	w.Expect(t, 10*time.Second)
}

// registerRetrying registers, retrying while the cluster elects new leaders.
func registerRetrying(ctx context.Context, r discovery.Registry, inst discovery.Instance, ttl time.Duration) (discovery.Registration, error) {
	var err error
	for range 50 {
		var reg discovery.Registration
		if reg, err = r.Register(ctx, inst, ttl); err == nil {
			return reg, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, err
}

// TestBucketConfig checks the bucket the registry creates.
func TestBucketConfig(t *testing.T) {
	s := startServer(t, t.TempDir())
	nc := connect(t, s.ClientURL())
	newRegistry(t, nc, natskv.WithBucket("custom_registry"))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), "custom_registry")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.History() != 1 || st.LimitMarkerTTL() == 0 {
		t.Errorf("bucket history %d, limit marker TTL %v", st.History(), st.LimitMarkerTTL())
	}
}
