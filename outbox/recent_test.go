package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/pubsub"
)

func seqsOf(rows []row) []int64 {
	var out []int64
	for _, r := range rows {
		out = append(out, r.seq)
	}
	return out
}

func rowsAt(seqs ...int64) []row {
	var out []row
	for _, s := range seqs {
		out = append(out, row{seq: s, id: fmt.Sprint(s)})
	}
	return out
}

// TestRecentTake: the relay takes only a run without a gap that starts right after its
// cursor, whatever order the transactions' hooks pushed their rows in.
func TestRecentTake(t *testing.T) {
	tests := []struct {
		name   string
		pushes [][]int64
		cursor int64
		limit  int
		want   []int64
		left   int
	}{
		{"in order", [][]int64{{1, 2}, {3}}, 0, 10, []int64{1, 2, 3}, 0},
		{"hooks out of order", [][]int64{{3, 4}, {1}, {2}}, 0, 10, []int64{1, 2, 3, 4}, 0},
		{"limit", [][]int64{{1, 2, 3}}, 0, 2, []int64{1, 2}, 1},
		{"gap after the run", [][]int64{{1, 2}, {4}}, 0, 10, []int64{1, 2}, 1},
		{"next row missing", [][]int64{{2, 3}}, 0, 10, nil, 2},
		{"rows at or below the cursor are dropped", [][]int64{{1, 2, 3, 4}}, 2, 10, []int64{3, 4}, 0},
		{"everything below the cursor", [][]int64{{1, 2}}, 5, 10, nil, 0},
		{"a row pushed twice is kept once", [][]int64{{1, 2}, {2, 3}}, 0, 10, []int64{1, 2, 3}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q recent
			q.start()
			for _, p := range tt.pushes {
				q.push(rowsAt(p...))
			}
			got := q.take(tt.cursor, tt.limit)
			if fmt.Sprint(seqsOf(got)) != fmt.Sprint(tt.want) {
				t.Errorf("take(%d, %d) = %v, want %v", tt.cursor, tt.limit, seqsOf(got), tt.want)
			}
			if q.len() != tt.left {
				t.Errorf("%d rows left, want %d", q.len(), tt.left)
			}
		})
	}
}

// TestRecentBounds: past its bounds the queue records nothing more, and taking rows
// makes room again.
func TestRecentBounds(t *testing.T) {
	var q recent
	q.start()
	for s := int64(1); s <= maxRecentRows+10; s++ {
		q.push(rowsAt(s))
	}
	if q.len() != maxRecentRows {
		t.Fatalf("%d rows kept, want the bound %d", q.len(), maxRecentRows)
	}
	if got := q.take(0, 100); len(got) != 100 || got[99].seq != 100 {
		t.Fatalf("took %d rows", len(got))
	}
	q.push(rowsAt(maxRecentRows + 20))
	if q.len() != maxRecentRows-100+1 {
		t.Fatalf("%d rows kept after taking 100 and pushing 1", q.len())
	}
	var big recent
	big.start()
	big.push([]row{{seq: 1, payload: make([]byte, maxRecentBytes)}})
	if big.len() != 0 {
		t.Fatal("a row over the byte bound was kept")
	}
	// Rows left out make the queue incomplete until the table has been read to its end
	// after them.
	if q.take(maxRecentRows+20, 1); q.len() != 0 {
		t.Fatalf("%d rows left", q.len())
	}
	if q.complete() {
		t.Fatal("complete with rows left out")
	}
	q.drained(q.dropCount())
	if !q.complete() {
		t.Fatal("not complete after the table was read past the rows left out")
	}
	q.push(rowsAt(maxRecentRows + 30))
	if q.complete() {
		t.Fatal("complete with a row kept")
	}
}

// TestRelayRowsLeftOut: rows that Add committed while the queue was full are read from
// the table right after the ones in memory, not at the next poll; and rows written
// outside Add are read at a notification.
func TestRelayRowsLeftOut(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	ob, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	ob.recent.limit = 2
	ob.recent.start() // as if a relay held the lease while the events are added
	bus := startBus(t)
	got := consumeCursorEvents(t, bus)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		addEvents(t, st, ob, id)
	}
	if n := ob.recent.len(); n != 2 {
		t.Fatalf("%d rows in memory, want 2", n)
	}
	// The adds' notification was taken already (by a relay busy with an earlier batch):
	// only the count of rows left out tells the relay to read the table.
	select {
	case <-ob.notify:
	default:
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Relay(bus, PollInterval(time.Hour)).Run(rctx) }()
	waitFor(t, "5 events", func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= 5 })
	if _, err := st.DB().ExecContext(ctx, "INSERT INTO outbox (id, subject, key, payload, headers, created_at) VALUES ('f', 'events.cursor', 'k', 'by hand', '', ?)", time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	ob.Notify()
	waitFor(t, "6 events", func() bool { got.mu.Lock(); defer got.mu.Unlock(); return len(got.order) >= 6 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	if want := "[a b c d e f]"; fmt.Sprint(got.order) != want {
		t.Fatalf("delivered %v, want %s", got.order, want)
	}
}

// TestRelayFromMemoryAndTable: the relay publishes the rows that Add committed from
// memory and reads the table for the others (a row written by hand, outside Add): every
// event arrives once, in sequence order, exactly as it was added; a rolled-back
// transaction's events are not published.
func TestRelayFromMemoryAndTable(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	ob, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	bus := startBus(t)
	got := map[string]*pubsub.Message{}
	var order deliveries
	sub, err := bus.Subscribe(ctx, "events.cursor", "c", func(ctx context.Context, m *pubsub.Message) error {
		order.mu.Lock()
		got[m.ID] = m
		order.mu.Unlock()
		return order.handler(ctx, m)
	}, pubsub.Concurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)

	ob.recent.start() // as if a relay held the lease while the events are added
	when := time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	full := &pubsub.Message{ID: "a", Subject: "events.cursor", Key: "k", Type: "t.a", Source: "src",
		ContentType: "text/plain", Time: when, Data: []byte("payload a"), Headers: map[string]string{"x-one": "1"}}
	data := []byte("payload b")
	if err := st.InTx(ctx, func(tx *sql.Tx) error {
		return ob.Add(ctx, tx, full, &pubsub.Message{ID: "b", Subject: "events.cursor", Key: "k", Data: data})
	}); err != nil {
		t.Fatal(err)
	}
	copy(data, "changed!!") // the caller's buffer, reused after the commit
	if _, err := st.DB().ExecContext(ctx, "INSERT INTO outbox (id, subject, key, payload, headers, created_at) VALUES ('x', 'events.cursor', 'k', 'by hand', '', ?)", time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("rolled back")
	if err := st.InTx(ctx, func(tx *sql.Tx) error {
		if err := ob.Add(ctx, tx, &pubsub.Message{ID: "rolled-back", Subject: "events.cursor", Key: "k"}); err != nil {
			return err
		}
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("InTx: %v", err)
	}
	addEvents(t, st, ob, "c", "d")
	if n := ob.recent.len(); n != 4 {
		t.Fatalf("%d rows in memory, want 4 (a, b, c, d)", n)
	}

	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	relay := ob.Relay(bus, PollInterval(time.Hour))
	go func() { done <- relay.Run(rctx) }()
	waitFor(t, "5 events", func() bool { order.mu.Lock(); defer order.mu.Unlock(); return len(order.order) >= 5 })
	waitFor(t, "the cursor at 5", func() bool { return cursorOf(t, st) == 5 })
	// The table is read for x (with c and d), then once more and found drained; e,
	// committed before that second read, would be found there instead of in memory.
	waitFor(t, "the read after d", func() bool { return relay.tableReads.Load() >= 2 })
	// Events added while the relay runs come from memory too.
	addEvents(t, st, ob, "e")
	waitFor(t, "6 events", func() bool { order.mu.Lock(); defer order.mu.Unlock(); return len(order.order) >= 6 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	order.mu.Lock()
	defer order.mu.Unlock()
	if want := "[a b x c d e]"; fmt.Sprint(order.order) != want {
		t.Fatalf("delivered %v, want %s", order.order, want)
	}
	if n := ob.recent.len(); n != 0 {
		t.Errorf("%d rows left in memory", n)
	}
	// a and b from memory; x from the table, with c and d after it; e from memory.
	ob.recent.mu.Lock()
	taken := ob.recent.taken
	ob.recent.mu.Unlock()
	if taken != 3 {
		t.Errorf("%d events published from memory, want 3 (a, b, e)", taken)
	}
	a := got["a"]
	if a.Type != "t.a" || a.Source != "src" || a.ContentType != "text/plain" || !a.Time.Equal(when) ||
		string(a.Data) != "payload a" || a.Key != "k" || a.Headers["x-one"] != "1" {
		t.Errorf("event a arrived as %+v", a)
	}
	if b := got["b"]; string(b.Data) != "payload b" || strings.Contains(string(b.Data), "changed") {
		t.Errorf("event b arrived with %q, want the payload as it was added", b.Data)
	}
	if x := got["x"]; string(x.Data) != "by hand" {
		t.Errorf("event x arrived with %q", x.Data)
	}
}

// TestRecentOnlyWhileRelaying: rows are kept only while a relay of the Outbox holds the
// lease in this process, and dropped when the last one lets go of it, so a process whose
// relay runs elsewhere holds none.
func TestRecentOnlyWhileRelaying(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	ob, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	addEvents(t, st, ob, "a")
	if n := ob.recent.len(); n != 0 {
		t.Fatalf("%d rows kept without a relay", n)
	}
	ob.recent.start()
	addEvents(t, st, ob, "b", "c")
	if n := ob.recent.len(); n != 2 {
		t.Fatalf("%d rows kept with a relay, want 2", n)
	}
	ob.recent.stop()
	if n := ob.recent.len(); n != 0 {
		t.Fatalf("%d rows kept after the relay stopped", n)
	}
	addEvents(t, st, ob, "d")
	if n := ob.recent.len(); n != 0 {
		t.Fatalf("%d rows kept after the relay stopped", n)
	}
	// A relay that runs holds the lease, and lets go of it when it ends.
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ob.Relay(startBus(t), PollInterval(20*time.Millisecond)).Run(rctx) }()
	waitFor(t, "the relay to publish a to d", func() bool { return cursorOf(t, st) == 4 })
	addEvents(t, st, ob, "e")
	waitFor(t, "the relay to publish e", func() bool { return cursorOf(t, st) == 5 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	addEvents(t, st, ob, "f")
	if n := ob.recent.len(); n != 0 {
		t.Fatalf("%d rows kept after Run returned", n)
	}
}
