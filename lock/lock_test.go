package lock_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/jsx"
	"github.com/svckit/svckit/lock"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/store"
)

type backendFunc func(t *testing.T) lock.Backend

func sqlBackend(t *testing.T) lock.Backend {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "lock.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := lock.NewSQL(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kvBackend(t *testing.T) lock.Backend {
	ctx := context.Background()
	s, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	nc, err := s.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := lock.KVBucket(ctx, js, "locks")
	if err != nil {
		t.Fatal(err)
	}
	return lock.NewKV(kv)
}

func TestSQL(t *testing.T) { suite(t, sqlBackend) }
func TestKV(t *testing.T)  { suite(t, kvBackend) }

func suite(t *testing.T, open backendFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b lock.Backend)
	}{
		{"Exclusive", testExclusive},
		{"TokensGrow", testTokensGrow},
		{"StaleHolderFenced", testStaleHolderFenced},
		{"RenewalKeepsLock", testRenewal},
		{"CloseReleases", testClose},
		{"Lead", testLead},
		{"OddNames", testOddNames},
		{"GiveUpBeforeTakeover", testGiveUpBeforeTakeover},
		{"AccessorsDuringRenewal", testAccessorsDuringRenewal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func testExclusive(t *testing.T, b lock.Backend) {
	ctx := context.Background()
	a, c := lock.New(b, lock.WithHolder("a")), lock.New(b, lock.WithHolder("c"))
	defer a.Close(ctx)
	defer c.Close(ctx)
	la, ok, err := a.TryAcquire(ctx, "job")
	if err != nil || !ok {
		t.Fatalf("a: %v %v", ok, err)
	}
	if _, ok, err := c.TryAcquire(ctx, "job"); err != nil || ok {
		t.Fatalf("c got a held lock: %v %v", ok, err)
	}
	if _, ok, err := c.TryAcquire(ctx, "other"); err != nil || !ok {
		t.Fatalf("c other: %v %v", ok, err)
	}
	if _, ok, _ := a.TryAcquire(ctx, "job"); ok {
		t.Fatal("a acquired its own lock twice")
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(context.Cause(la.Context()), lock.ErrReleased) {
		t.Errorf("cause %v", context.Cause(la.Context()))
	}
	if _, ok, err := c.TryAcquire(ctx, "job"); err != nil || !ok {
		t.Fatalf("c after release: %v %v", ok, err)
	}
}

func testTokensGrow(t *testing.T, b lock.Backend) {
	ctx := context.Background()
	var last uint64
	for i := range 5 {
		l := lock.New(b, lock.WithHolder(string(rune('a'+i))))
		lease, err := l.Acquire(ctx, "grow")
		if err != nil {
			t.Fatal(err)
		}
		if lease.Token() <= last {
			t.Fatalf("token %d after %d", lease.Token(), last)
		}
		last = lease.Token()
		lease.Release(ctx)
	}
}

// partitioned is a backend whose renewals fail while cut is set, as for a holder cut
// off from the backend.
type partitioned struct {
	lock.Backend
	cut     atomic.Bool
	renewed atomic.Int32
}

func (p *partitioned) Renew(ctx context.Context, g lock.Grant, ttl time.Duration) (lock.Grant, error) {
	if p.cut.Load() {
		return g, errors.New("network partition")
	}
	p.renewed.Add(1)
	return p.Backend.Renew(ctx, g, ttl)
}

func testStaleHolderFenced(t *testing.T, b lock.Backend) {
	ctx := context.Background()
	pa := &partitioned{Backend: b}
	a := lock.New(pa, lock.WithHolder("a"), lock.WithTTL(100*time.Millisecond))
	c := lock.New(b, lock.WithHolder("c"), lock.WithTTL(time.Minute), lock.WithRetryInterval(10*time.Millisecond))
	defer c.Close(ctx)
	var fence lock.Fence
	la, err := a.Acquire(ctx, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	if err := fence.Check("ledger", la.Token()); err != nil {
		t.Fatal(err)
	}
	pa.cut.Store(true) // a stops renewing: its lease runs out in the backend
	lc, err := c.Acquire(ctx, "ledger")
	if err != nil {
		t.Fatal(err)
	}
	if lc.Token() <= la.Token() {
		t.Fatalf("new holder's token %d <= old %d", lc.Token(), la.Token())
	}
	if err := fence.Check("ledger", lc.Token()); err != nil {
		t.Fatal(err)
	}
	// a did not hear of it yet; its write is rejected by the fence.
	if err := fence.Check("ledger", la.Token()); !errors.Is(err, lock.ErrStaleToken) {
		t.Fatalf("stale write: %v", err)
	}
	<-la.Done() // a gives the lease up once its TTL passed without renewal
	if !errors.Is(context.Cause(la.Context()), lock.ErrLost) {
		t.Errorf("cause %v", context.Cause(la.Context()))
	}
	pa.cut.Store(false)
	if _, err := b.Renew(ctx, lock.Grant{Name: "ledger", Holder: "a", Token: la.Token(), Version: la.Token()}, time.Minute); !errors.Is(err, lock.ErrLost) {
		t.Errorf("stale renewal: %v", err)
	}
}

func testRenewal(t *testing.T, b lock.Backend) {
	ctx := context.Background()
	pa := &partitioned{Backend: b}
	a := lock.New(pa, lock.WithTTL(time.Second))
	defer a.Close(ctx)
	c := lock.New(b)
	la, err := a.Acquire(ctx, "renewed")
	if err != nil {
		t.Fatal(err)
	}
	for pa.renewed.Load() < 4 { // well past the first TTL
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok, _ := c.TryAcquire(ctx, "renewed"); ok {
		t.Fatal("lock taken despite renewals")
	}
	if la.Context().Err() != nil {
		t.Fatal("lease lost")
	}
}

func testClose(t *testing.T, b lock.Backend) {
	ctx := context.Background()
	a := lock.New(b, lock.WithTTL(time.Hour))
	la, err := a.Acquire(ctx, "closing")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	<-la.Done()
	if _, ok, err := lock.New(b).TryAcquire(ctx, "closing"); err != nil || !ok {
		t.Fatalf("after Close: %v %v", ok, err)
	}
}

func testLead(t *testing.T, b lock.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var leaders, terms atomic.Int32
	var fence lock.Fence
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 3 {
		l := lock.New(b, lock.WithTTL(time.Minute), lock.WithRetryInterval(5*time.Millisecond))
		wg.Go(func() {
			err := l.Lead(ctx, "leader", func(ctx context.Context, lease *lock.Lease) error {
				if n := leaders.Add(1); n != 1 {
					errs <- errors.New("two leaders at once")
				}
				mu.Lock()
				err := fence.Check("term", lease.Token())
				mu.Unlock()
				if err != nil {
					errs <- err
				}
				time.Sleep(time.Millisecond)
				leaders.Add(-1)
				if terms.Add(1) >= 20 {
					cancel()
				}
				return nil // step down; campaign again
			})
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testOddNames(t *testing.T, b lock.Backend) {
	ctx := context.Background()
	l := lock.New(b)
	defer l.Close(ctx)
	for _, name := range []string{"orders/42", "a b c", "ünïcode", "x.y", ".dot"} {
		if _, ok, err := l.TryAcquire(ctx, name); err != nil || !ok {
			t.Errorf("%q: %v %v", name, ok, err)
		}
	}
}

// TestKVCluster runs the suite on a bucket replicated over a 3-node JetStream cluster,
// where compare-and-set conflicts are reported differently than on one server.
func TestKVCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ctx := context.Background()
	c, err := natsserver.StartCluster(ctx, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown(context.Background()) })
	n := 0
	suite(t, func(t *testing.T) lock.Backend {
		nc, err := nats.Connect(c.URLs())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		n++
		kv, err := jsx.CreateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: fmt.Sprint("locks", n), History: 1, Replicas: 3})
		if err != nil {
			t.Fatal(err)
		}
		return lock.NewKV(kv)
	})
}
