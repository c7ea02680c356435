package binding_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/binding"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

// startBus starts an embedded NATS server and a pubsub.Bus on it.
func startBus(t *testing.T) (*pubsub.Bus, *nats.Conn) {
	t.Helper()
	bus, nc, _ := startBusServer(t)
	return bus, nc
}

// startBusServer is startBus that also returns the server.
func startBusServer(t *testing.T) (*pubsub.Bus, *nats.Conn, *natsserver.Server) {
	t.Helper()
	ctx := context.Background()
	srv, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	bus, err := pubsub.New(ctx, nc, pubsub.Config{Source: "binding-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()) })
	return bus, nc, srv
}

// waitQueueMembers waits until n subscriptions of queue group queue match subject.
func waitQueueMembers(t *testing.T, srv *natsserver.Server, subject, queue string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sz, err := srv.Server().Subsz(&server.SubszOptions{Subscriptions: true, Test: subject, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, s := range sz.Subs {
			if s.Queue == queue {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d members of queue group %s on %s after 10s, want %d", got, queue, subject, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openStore opens a SQLite file in a temporary directory.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// mustOpen parses yamlCfg and opens it with deps.
func mustOpen(t *testing.T, yamlCfg string, deps binding.Deps) *binding.Set {
	t.Helper()
	cfg, err := binding.ParseConfig([]byte(yamlCfg))
	if err != nil {
		t.Fatal(err)
	}
	set, err := binding.Open(context.Background(), cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set
}

// runInput runs in with h until the test ends, and waits for Run to return then.
func runInput(t *testing.T, in binding.Input, h binding.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", in.Name(), err)
		}
	})
}

// collector gathers events.
type collector struct {
	mu     sync.Mutex
	events []binding.Event
	ch     chan binding.Event
}

func newCollector() *collector { return &collector{ch: make(chan binding.Event, 1000)} }

func (c *collector) handle(_ context.Context, e binding.Event) error {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	c.ch <- e
	return nil
}

// next waits for the next event, failing the test after a generous deadline.
func (c *collector) next(t *testing.T) binding.Event {
	t.Helper()
	select {
	case e := <-c.ch:
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
		return binding.Event{}
	}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}
