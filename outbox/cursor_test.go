package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
	_ "github.com/svckit/svckit/store/sqlite"
)

// The tests of the SQLite relay's cursor (outbox_cursor), on a real SQLite file and the
// embedded NATS server.

func openSQLite(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func startBus(t *testing.T) *pubsub.Bus {
	t.Helper()
	ctx := context.Background()
	srv, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	bus, err := pubsub.New(ctx, nc, pubsub.Config{Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close(context.Background()); nc.Close() })
	return bus
}

// consumeCursorEvents subscribes to events.cursor, one message at a time, until the test
// ends, and returns what it delivers.
func consumeCursorEvents(t *testing.T, bus *pubsub.Bus) *deliveries {
	t.Helper()
	got := &deliveries{}
	sub, err := bus.Subscribe(context.Background(), "events.cursor", "c", got.handler, pubsub.Concurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Stop(context.Background()) })
	return got
}

// deliveries counts the deliveries of each event id.
type deliveries struct {
	mu    sync.Mutex
	count map[string]int
	order []string
}

func (d *deliveries) handler(_ context.Context, m *pubsub.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.count == nil {
		d.count = map[string]int{}
	}
	d.count[m.ID]++
	d.order = append(d.order, m.ID)
	return nil
}

// waitFor polls cond until it holds or 30 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cursorOf(t *testing.T, st *store.Store) int64 {
	t.Helper()
	var seq int64
	if err := st.ReadDB().QueryRow("SELECT seq FROM outbox_cursor WHERE name = 'relay'").Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

func addEvents(t *testing.T, st *store.Store, ob *Outbox, ids ...string) {
	t.Helper()
	ctx := context.Background()
	if err := st.InTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if err := ob.Add(ctx, tx, &pubsub.Message{ID: id, Subject: "events.cursor", Key: "k"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCursorMigration starts from an outbox written before the cursor (migration 001
// only): rows marked sent, unsent ones, and one marked sent above an unsent one (a mark
// that failed before a later one succeeded). Migration 002 puts the cursor below the
// oldest unsent row: the relay publishes that row and everything after it, and none of
// the rows before it.
func TestCursorMigration(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	v1 := fstest.MapFS{}
	b, err := fs.ReadFile(migrations, "migrations/001_outbox.sqlite.sql")
	if err != nil {
		t.Fatal(err)
	}
	v1["migrations/001_outbox.sqlite.sql"] = &fstest.MapFile{Data: b}
	if err := st.Migrate(ctx, v1, store.WithSet(MigrationSet), store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	sent := map[int]bool{1: true, 2: true, 3: true, 4: false, 5: true, 6: false}
	for seq := 1; seq <= 6; seq++ {
		var at any
		if sent[seq] {
			at = time.Now().UnixNano()
		}
		if _, err := st.DB().ExecContext(ctx, "INSERT INTO outbox (seq, id, subject, key, created_at, sent_at) VALUES (?, ?, 'events.cursor', 'k', ?, ?)",
			seq, fmt.Sprintf("old-%d", seq), time.Now().UnixNano(), at); err != nil {
			t.Fatal(err)
		}
	}
	ob, err := New(ctx, st) // applies 002
	if err != nil {
		t.Fatal(err)
	}
	if c := cursorOf(t, st); c != 3 {
		t.Fatalf("cursor after the migration = %d, want 3 (below the oldest unsent row)", c)
	}
	if n, err := ob.Pending(ctx); err != nil || n != 3 {
		t.Fatalf("Pending = %d, %v; want 3", n, err)
	}
	bus := startBus(t)
	got := consumeCursorEvents(t, bus)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Relay(bus, PollInterval(time.Hour)).Run(rctx) }()
	addEvents(t, st, ob, "new-7")
	waitFor(t, "4 events", func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= 4 })
	waitFor(t, "the cursor at 7", func() bool { return cursorOf(t, st) == 7 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if want := []string{"old-4", "old-5", "old-6", "new-7"}; fmt.Sprint(got.order) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got.order, want)
	}
}

// crashingPublisher publishes its first batch, and then, instead of returning, cancels
// the relay's context: the relay ends between the publish and the cursor's update, as if
// its process had been killed there.
type crashingPublisher struct {
	pub    pubsub.Publisher
	cancel context.CancelFunc
	once   sync.Once
	n      int // events in the batch published before the crash
}

func (c *crashingPublisher) Publish(ctx context.Context, msgs ...*pubsub.Message) error {
	err := c.pub.Publish(ctx, msgs...)
	crashed := false
	c.once.Do(func() {
		c.n, crashed = len(msgs), true
		c.cancel()
	})
	if crashed {
		<-ctx.Done()
		return errors.Join(err, ctx.Err())
	}
	return err
}

// TestCursorCrashBetweenPublishAndMark: a relay publishes a batch and ends before it
// moves the cursor; the next relay (another owner, after the lease was released) starts
// from the recorded cursor, publishes the batch again, and JetStream drops the copies:
// every event is delivered once, in order, and the cursor ends at the last one.
func TestCursorCrashBetweenPublishAndMark(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	ob, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	bus := startBus(t)
	got := consumeCursorEvents(t, bus)
	var want []string
	for i := range 30 {
		want = append(want, fmt.Sprintf("ev-%02d", i))
	}
	addEvents(t, st, ob, want[:20]...)

	rctx, cancel := context.WithCancel(ctx)
	crash := &crashingPublisher{pub: bus, cancel: cancel}
	if err := ob.Relay(crash, Owner("first"), BatchSize(20), PollInterval(time.Hour)).Run(rctx); err != nil {
		t.Fatal(err)
	}
	if crash.n != 20 {
		t.Fatalf("the first relay published %d events before its crash, want 20", crash.n)
	}
	if c := cursorOf(t, st); c != 0 {
		t.Fatalf("cursor %d after a crash before the mark, want 0", c)
	}
	waitFor(t, "20 events", func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= 20 })

	addEvents(t, st, ob, want[20:]...)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Relay(bus, Owner("second"), BatchSize(20), PollInterval(time.Hour)).Run(rctx) }()
	waitFor(t, "the cursor at 30", func() bool { return cursorOf(t, st) == 30 })
	waitFor(t, "30 events", func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= 30 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, err := ob.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("Pending = %d, %v; want 0", n, err)
	}
	info, err := bus.JetStream().Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	si, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 30 {
		t.Fatalf("stream holds %v messages, want 30: the republished batch was not de-duplicated", si.State.Msgs)
	}
	// The stream holds each event once, so a duplicate delivery could only be a
	// redelivery: once the subscription's consumer has every message acknowledged and
	// none pending, none can come.
	waitFor(t, "every event acknowledged", func() bool {
		for ci := range info.ListConsumers(ctx).Info() {
			if ci.Config.FilterSubject == "events.cursor" || slices.Contains(ci.Config.FilterSubjects, "events.cursor") {
				return ci.NumAckPending == 0 && ci.NumPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq
			}
		}
		return false
	})
	got.mu.Lock()
	defer got.mu.Unlock()
	if fmt.Sprint(got.order) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v once each, in order", got.order, want)
	}
}

// TestCursorRowsDeletedByHand: the outbox emptied by hand (or by the relay's purge) hands
// out no sequence number again (AUTOINCREMENT), so the events added afterwards are above
// the cursor and published.
func TestCursorRowsDeletedByHand(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	ob, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	bus := startBus(t)
	got := consumeCursorEvents(t, bus)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Relay(bus, PollInterval(20*time.Millisecond)).Run(rctx) }()
	addEvents(t, st, ob, "a", "b", "c")
	waitFor(t, "the cursor at 3", func() bool { return cursorOf(t, st) == 3 })
	for round, ids := range [][]string{{"d", "e"}, {"f"}} {
		if _, err := st.DB().ExecContext(ctx, "DELETE FROM outbox"); err != nil {
			t.Fatal(err)
		}
		addEvents(t, st, ob, ids...)
		want := int64(3 + 2*round + len(ids))
		waitFor(t, fmt.Sprintf("round %d: the cursor at %d", round, want), func() bool { return cursorOf(t, st) == want })
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "6 events", func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= 6 })
	got.mu.Lock()
	defer got.mu.Unlock()
	if want := []string{"a", "b", "c", "d", "e", "f"}; fmt.Sprint(got.order) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got.order, want)
	}
}

// TestCursorLeaseAndOrder: the cursor moves only forward, and only for the relay that
// holds the lease, so a relay that lost its lease cannot move the cursor of the one that
// took over (backwards, or forwards past rows it did not publish).
func TestCursorLeaseAndOrder(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	ob, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	holder := ob.Relay(nil, Owner("holder"))
	stale := ob.Relay(nil, Owner("stale"))
	if ok, err := holder.acquire(ctx); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	steps := []struct {
		r    *Relay
		seq  int64
		want int64
	}{
		{holder, 5, 5},
		{stale, 9, 5},  // not the lease holder: no effect
		{holder, 3, 5}, // backwards: no effect
		{holder, 8, 8},
	}
	for i, s := range steps {
		if err := s.r.mark(ctx, []int64{s.seq}); err != nil {
			t.Fatal(err)
		}
		if c := cursorOf(t, st); c != s.want {
			t.Fatalf("step %d: %s marked %d: cursor %d, want %d", i, s.r.owner, s.seq, c, s.want)
		}
	}
}
