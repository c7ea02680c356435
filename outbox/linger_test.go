package outbox

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/pubsub"
)

// batchCounter is a publisher that records the size of each batch it is handed.
type batchCounter struct {
	pub   pubsub.Publisher
	mu    sync.Mutex
	sizes []int
}

func (c *batchCounter) Publish(ctx context.Context, msgs ...*pubsub.Message) error {
	c.mu.Lock()
	c.sizes = append(c.sizes, len(msgs))
	c.mu.Unlock()
	return c.pub.Publish(ctx, msgs...)
}

// TestRelayLinger: after a commit wakes it, the relay waits its linger for more events,
// so events committed one transaction at a time within it go out in one batch; without
// a linger, an event whose transaction commits while the relay is idle goes out alone.
// Every event arrives once, in order, either way.
func TestRelayLinger(t *testing.T) {
	for _, tc := range []struct {
		name     string
		linger   time.Duration
		waitEach bool // wait for each event's delivery before adding the next
		check    func(sizes []int) error
	}{
		{name: "none", linger: 0, waitEach: true, check: func(sizes []int) error {
			if fmt.Sprint(sizes) != "[1 1 1 1]" {
				return fmt.Errorf("batches %v, want one per event", sizes)
			}
			return nil
		}},
		{name: "1s", linger: time.Second, check: func(sizes []int) error {
			// "a" goes out alone (it was waited for); "b", "c" and "d", added while the
			// relay is idle, wait out one linger together. (Should the relay not have
			// reached its wait yet when "b" commits, "b" goes out alone, and "c" and
			// "d" together.)
			if len(sizes) < 2 || len(sizes) > 3 || sizes[0] != 1 || slices.Max(sizes[1:]) < 2 {
				return fmt.Errorf("batches %v, want [1 3] ([1 1 2] at worst)", sizes)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := openSQLite(t)
			ob, err := New(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			bus := startBus(t)
			got := consumeCursorEvents(t, bus)
			pub := &batchCounter{pub: bus}
			rctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- ob.Relay(pub, Linger(tc.linger), PollInterval(time.Hour)).Run(rctx) }()
			delivered := func(n int) func() bool {
				return func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= n }
			}
			ids := []string{"a", "b", "c", "d"}
			for i, id := range ids {
				addEvents(t, st, ob, id)
				if tc.waitEach || i == 0 {
					waitFor(t, id, delivered(i+1))
					// and marked sent: the relay is about to wait for the next commit
					waitFor(t, id+" marked", func() bool { return cursorOf(t, st) == int64(i+1) })
				}
			}
			waitFor(t, "all events", delivered(len(ids)))
			stop()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got.mu.Lock()
			defer got.mu.Unlock()
			if fmt.Sprint(got.order) != fmt.Sprint(ids) {
				t.Fatalf("delivered %v, want %v", got.order, ids)
			}
			pub.mu.Lock()
			defer pub.mu.Unlock()
			if err := tc.check(pub.sizes); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRelayWakeFromAdd: a wake-up from Add's commits whose rows the relay has taken
// already costs no read of the table, while Notify (rows written outside Add) still
// makes the relay read it.
func TestRelayWakeFromAdd(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	ob, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	bus := startBus(t)
	got := consumeCursorEvents(t, bus)
	relay := ob.Relay(bus, Linger(0), PollInterval(time.Hour))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	delivered := func(n int) func() bool {
		return func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= n }
	}
	// The relay holds the lease and has read the empty table: Add keeps a in memory, and
	// the relay takes it from there, with no read of the table after it.
	waitFor(t, "the relay's first read", func() bool { return relay.tableReads.Load() >= 1 })
	addEvents(t, st, ob, "a")
	waitFor(t, "a", delivered(1))
	waitFor(t, "a marked", func() bool { return cursorOf(t, st) == 1 })
	reads := relay.tableReads.Load()
	// A wake-up as Add's commit gives, for rows taken already: nothing to read.
	ob.wake()
	waitFor(t, "the wake-up taken", func() bool { return len(ob.notify) == 0 })
	// A row written by hand, announced by Notify: the relay reads the table for it.
	if _, err := st.DB().ExecContext(ctx, "INSERT INTO outbox (id, subject, key, payload, headers, created_at) VALUES ('b', 'events.cursor', 'k', 'by hand', '', ?)", time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	ob.Notify()
	waitFor(t, "b", delivered(2))
	// The relay reads the table again after b and finds it drained; c, committed before
	// that read, would be found there instead of in memory.
	waitFor(t, "the read after b", func() bool { return relay.tableReads.Load()-reads >= 2 })
	addEvents(t, st, ob, "c")
	waitFor(t, "c", delivered(3))
	waitFor(t, "c marked", func() bool { return cursorOf(t, st) == 3 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// For the row written by hand: the read that finds it and the one that finds the
	// table drained after it.
	if n := relay.tableReads.Load() - reads; n != 2 {
		t.Errorf("%d reads of the table after the first event, want 2 (for the row written by hand)", n)
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if want := "[a b c]"; fmt.Sprint(got.order) != want {
		t.Fatalf("delivered %v, want %s", got.order, want)
	}
}
