package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

// env is a store with an outbox, a bus on an embedded server, and a consumer.
type env struct {
	st  *store.Store
	ob  *outbox.Outbox
	bus *pubsub.Bus
}

func newBus(t *testing.T) *pubsub.Bus {
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

func newEnv(t *testing.T, st *store.Store) *env {
	t.Helper()
	ctx := context.Background()
	ob, err := outbox.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, amount INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	return &env{st: st, ob: ob, bus: newBus(t)}
}

func sqliteStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// received collects messages in arrival order.
type received struct {
	mu   sync.Mutex
	msgs []*pubsub.Message
	ids  map[string]int
}

func (r *received) handler(ctx context.Context, m *pubsub.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	r.ids[m.ID]++
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *received) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.ids)
		r.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("received %d distinct events, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelaySQLite(t *testing.T) { testRelay(t, sqliteStore(t)) }

// testRelay writes orders and their events, some in transactions that roll back, and
// checks that exactly the committed events arrive, once each, in commit order, with their
// attributes — woken by commits, with polling disabled.
func testRelay(t *testing.T, st *store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, st)
	var got received
	sub, err := e.bus.Subscribe(ctx, "events.orders.>", "test", got.handler, pubsub.Concurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	relay := e.ob.Relay(e.bus, outbox.PollInterval(time.Hour), outbox.BatchSize(100))
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()

	const txs, per = 50, 7
	var want []string
	var added time.Time // the time Add gave the first event
	boom := errors.New("rollback")
	for i := range txs {
		var ids []string
		err := st.InTx(ctx, func(tx *sql.Tx) error {
			ids = ids[:0]
			for j := range per {
				id := fmt.Sprintf("o-%d-%d", i, j)
				if _, err := tx.ExecContext(ctx, st.Rebind("INSERT INTO orders (id, amount) VALUES (?, ?)"), id, j); err != nil {
					return err
				}
				m := &pubsub.Message{ID: "ev-" + id, Subject: "events.orders.created", Key: id, Type: "order.created",
					Data: []byte(`{"id":"` + id + `"}`), Headers: map[string]string{"x-n": fmt.Sprint(j)}}
				if err := e.ob.Add(ctx, tx, m); err != nil {
					return err
				}
				ids = append(ids, m.ID)
				if i == 0 && j == 0 {
					added = m.Time
				}
			}
			if i%10 == 9 {
				return boom
			}
			return nil
		})
		if i%10 == 9 {
			if !errors.Is(err, boom) {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ids...)
	}
	got.wait(t, len(want))
	time.Sleep(50 * time.Millisecond)
	got.mu.Lock()
	defer got.mu.Unlock()
	if len(got.msgs) != len(want) {
		t.Fatalf("received %d events, want %d", len(got.msgs), len(want))
	}
	for i, m := range got.msgs {
		if m.ID != want[i] {
			t.Fatalf("event %d is %s, want %s (order)", i, m.ID, want[i])
		}
	}
	m := got.msgs[0]
	if m.Type != "order.created" || m.Key != "o-0-0" || m.Header("x-n") != "0" || m.Source != "test" || string(m.Data) != `{"id":"o-0-0"}` {
		t.Errorf("event attributes: %+v", m)
	}
	if !m.Time.Equal(added) {
		t.Errorf("event time %v, want the time Add gave it, %v", m.Time, added)
	}
	n, err := e.ob.Pending(ctx)
	if err != nil || n != 0 {
		t.Errorf("Pending = %d, %v", n, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestLease runs two relays on one store: one relays while the other waits, and the
// waiting one takes over when the first stops.
func TestLease(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteStore(t))
	var got received
	sub, err := e.bus.Subscribe(ctx, "events.>", "lease", got.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	add := func(id string) {
		if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
			return e.ob.Add(ctx, tx, &pubsub.Message{ID: id, Subject: "events.lease"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	ctx1, stop1 := context.WithCancel(ctx)
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	done1 := make(chan error, 1)
	go func() {
		done1 <- e.ob.Relay(e.bus, outbox.Owner("one"), outbox.LeaseTTL(300*time.Millisecond)).Run(ctx1)
	}()
	add("a")
	got.wait(t, 1)
	// The second relay gets its own outbox value (as another process would) so the
	// notifications go to the first only; it polls.
	ob2, err := outbox.New(ctx, e.st)
	if err != nil {
		t.Fatal(err)
	}
	go ob2.Relay(e.bus, outbox.Owner("two"), outbox.LeaseTTL(300*time.Millisecond), outbox.PollInterval(20*time.Millisecond)).Run(ctx2)
	var owner string
	if err := e.st.ReadDB().QueryRowContext(ctx, "SELECT owner FROM outbox_lease").Scan(&owner); err != nil || owner != "one" {
		t.Fatalf("lease owner %q, %v", owner, err)
	}
	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	add("b") // relay one is gone: only relay two can publish it
	got.wait(t, 2)
	if err := e.st.ReadDB().QueryRowContext(ctx, "SELECT owner FROM outbox_lease").Scan(&owner); err != nil || owner != "two" {
		t.Fatalf("lease owner %q, %v", owner, err)
	}
}

// TestTraceContext checks that each event gets a producer span, a child of the span that
// added it, and that the consumer's span continues it across the outbox table; and that
// a context whose span does not record passes its trace context on unchanged.
func TestTraceContext(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteStore(t))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	spans := make(chan string, 2)
	h := func(ctx context.Context, m *pubsub.Message) error {
		spans <- m.Header("traceparent")
		return nil
	}
	sub, err := e.bus.Subscribe(ctx, "events.traced", "tr", h, pubsub.WithMiddleware(pubsub.Tracing(tp)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go e.ob.Relay(e.bus).Run(rctx)
	next := func() string {
		select {
		case got := <-spans:
			return got
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
			return ""
		}
	}

	sctx, span := tp.Tracer("test").Start(ctx, "place order")
	if err := e.st.InTx(sctx, func(tx *sql.Tx) error {
		return e.ob.Add(sctx, tx, &pubsub.Message{Subject: "events.traced", ID: "m1"})
	}); err != nil {
		t.Fatal(err)
	}
	span.End()
	got := next()
	var producer sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindProducer {
			producer = s
		}
	}
	if producer == nil {
		t.Fatal("no producer span recorded")
	}
	if producer.Name() != "publish events.traced" || producer.Parent().SpanID() != span.SpanContext().SpanID() || producer.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("producer span %q with parent %s, want \"publish events.traced\" under %s", producer.Name(), producer.Parent().SpanID(), span.SpanContext().SpanID())
	}
	attrs := map[string]string{}
	for _, a := range producer.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["messaging.destination.name"] != "events.traced" || attrs["messaging.message.id"] != "m1" || attrs["svckit.outbox"] != "true" {
		t.Fatalf("producer span attributes %v", attrs)
	}
	if want := fmt.Sprintf("00-%s-%s-01", producer.SpanContext().TraceID(), producer.SpanContext().SpanID()); got != want {
		t.Fatalf("event traceparent %q, want the producer span's %q", got, want)
	}

	// A remote, unsampled parent: no span is recorded, its context travels as is.
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, Remote: true})
	uctx := trace.ContextWithRemoteSpanContext(ctx, remote)
	n := len(rec.Ended())
	if err := e.st.InTx(uctx, func(tx *sql.Tx) error {
		return e.ob.Add(uctx, tx, &pubsub.Message{Subject: "events.traced"})
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := next(), fmt.Sprintf("00-%s-%s-00", remote.TraceID(), remote.SpanID()); got != want {
		t.Fatalf("unsampled event traceparent %q, want %q", got, want)
	}
	for _, s := range rec.Ended()[n:] {
		if s.SpanKind() == trace.SpanKindProducer {
			t.Fatal("a producer span was recorded under an unsampled parent")
		}
	}
}

// TestPurgeAndReuse purges sent events at once: once the table is empty, the relay must
// still publish the new events (on SQLite their sequence numbers go on above the purged
// ones, AUTOINCREMENT, and so above the relay's cursor).
func TestPurgeAndReuse(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteStore(t))
	var got received
	sub, err := e.bus.Subscribe(ctx, "events.purge", "p", got.handler)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go e.ob.Relay(e.bus, outbox.Retention(time.Nanosecond), outbox.PollInterval(time.Hour)).Run(rctx)
	for i, id := range []string{"first", "second", "third"} {
		if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
			return e.ob.Add(ctx, tx, &pubsub.Message{ID: id, Subject: "events.purge"})
		}); err != nil {
			t.Fatal(err)
		}
		got.wait(t, i+1)
		deadline := time.Now().Add(10 * time.Second)
		for { // until the relay has purged the sent row
			var n int
			if err := e.st.ReadDB().QueryRowContext(ctx, "SELECT COUNT(*) FROM outbox").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d rows not purged", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
