package lock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/lock"
)

// stalled is a backend whose renewals fail at once (mode "fail") or hang until their
// context ends (mode "hang") while cut is set: a holder cut off from the backend.
type stalled struct {
	lock.Backend
	hang bool
	cut  atomic.Bool
}

func (s *stalled) Renew(ctx context.Context, g lock.Grant, ttl time.Duration) (lock.Grant, error) {
	if s.cut.Load() {
		if s.hang {
			<-ctx.Done()
			return g, ctx.Err()
		}
		return g, errors.New("network partition")
	}
	return s.Backend.Renew(ctx, g, ttl)
}

// testGiveUpBeforeTakeover: a holder cut off from the backend gives its lease up before
// its TTL ends in the backend, so by the time another holder acquires the lock, the old
// holder's lease context is done — there is no moment at which both believe they hold it.
func testGiveUpBeforeTakeover(t *testing.T, b lock.Backend) {
	for _, hang := range []bool{false, true} {
		name := map[bool]string{false: "RenewalsFail", true: "RenewalsHang"}[hang]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			const ttl = 2 * time.Second // the margin (TTL/10) must exceed scheduling delays
			sa := &stalled{Backend: b, hang: hang}
			a := lock.New(sa, lock.WithHolder("a"), lock.WithTTL(ttl))
			c := lock.New(b, lock.WithHolder("c"), lock.WithTTL(time.Minute), lock.WithRetryInterval(2*time.Millisecond))
			defer c.Close(ctx)
			defer a.Close(ctx)
			la, err := a.Acquire(ctx, "takeover-"+name)
			if err != nil {
				t.Fatal(err)
			}
			sa.cut.Store(true)
			lc, err := c.Acquire(ctx, "takeover-"+name)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-la.Done():
			default:
				<-la.Done()
				t.Fatalf("the old holder's lease was still live when the new holder acquired the lock (token %d over %d)", lc.Token(), la.Token())
			}
			if !errors.Is(context.Cause(la.Context()), lock.ErrLost) {
				t.Errorf("cause %v, want ErrLost", context.Cause(la.Context()))
			}
		})
	}
}

// testAccessorsDuringRenewal reads a lease's name and token while it renews itself (run
// with -race).
func testAccessorsDuringRenewal(t *testing.T, b lock.Backend) {
	ctx := context.Background()
	l := lock.New(b, lock.WithTTL(30*time.Millisecond))
	defer l.Close(ctx)
	lease, err := l.Acquire(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	token := lease.Token()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			deadline := time.Now().Add(200 * time.Millisecond)
			for time.Now().Before(deadline) {
				if lease.Name() != "busy" || lease.Token() != token {
					t.Error("name or token changed")
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
	wg.Wait()
}
