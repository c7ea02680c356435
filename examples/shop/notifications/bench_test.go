//go:build unix

package notifications_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/examples/shop/notifications"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/observe/otlp/otlptest"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

// BenchmarkRecordAtRate runs the notifications service as the shop does — two replicas
// in one consumer group, each with its own store on one SQLite file, pubsub.Default's
// middleware (every span sampled and exported to a loopback collector), concurrency 32 —
// and feeds it the orders events of 300 orders per second (OrderPlaced and
// OrderConfirmed per order, keyed by the order), published to the embedded NATS server
// in process. It compares two batch lingers, 5 ms and 20 ms, in alternating rounds of
// 1,800 events, and reports the process's CPU time per event for each (getrusage: the
// publisher and the NATS server included, the same for both). Batches only form when
// events arrive spread out in time, as in the shop, which is why the events come at a
// fixed rate instead of as fast as they can. -benchtime counts events, such as 7200x.
func BenchmarkRecordAtRate(b *testing.B) {
	otlptest.Discard(b)
	ctx := context.Background()
	tp, err := observe.NewTracerProvider(ctx, observe.TracingOptions{Service: "notifications"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(ctx) }()
	logs := observe.NewBufferedWriter(io.Discard, 64<<10, 100*time.Millisecond)
	defer func() { _ = logs.Close() }()
	logger := observe.NewLogger(logs, observe.LogOptions{Service: "notifications"})

	type setup struct {
		name    string
		bus     *pubsub.Bus
		handled atomic.Int64
	}
	start := func(name string, linger time.Duration) *setup {
		dir := b.TempDir()
		srv, err := natsserver.Start(ctx, filepath.Join(dir, "js"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		st := &setup{name: name}
		metrics, err := pubsub.NewMetrics(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		counted := func(next pubsub.Handler) pubsub.Handler {
			return func(ctx context.Context, msg *pubsub.Message) error {
				err := next(ctx, msg)
				if err == nil {
					st.handled.Add(1)
				}
				return err
			}
		}
		mws := append(pubsub.Default(logger, tp, metrics, 10*time.Second), counted)
		for replica := range 2 {
			nc, err := srv.Connect()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			bus, err := pubsub.New(ctx, nc, pubsub.Config{Stream: "SHOP", Subjects: []string{"shop.>"}, Source: "notifications"})
			if err != nil {
				b.Fatal(err)
			}
			if replica == 0 {
				st.bus = bus
			}
			db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "notifications.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			if err := db.Migrate(ctx, notifications.Migrations, store.WithDir("migrations")); err != nil {
				b.Fatal(err)
			}
			svc := notifications.New(db, notifications.WithBatch(linger, 32))
			sub, err := bus.Subscribe(ctx, "shop.orders.>", "notifications", svc.Handle,
				pubsub.WithMiddleware(mws...), pubsub.MaxAttempts(5), pubsub.Concurrency(32))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = sub.Stop(context.Background()) })
		}
		return st
	}
	setups := []*setup{start("linger-5ms", 5*time.Millisecond), start("linger-20ms", 20*time.Millisecond)}

	const perTick, tick, round = 3, 10 * time.Millisecond, 1800 // 300 orders/s: 600 events/s
	order := 0
	feed := func(st *setup) {
		want := st.handled.Load() + round
		t := time.NewTicker(tick)
		defer t.Stop()
		for sent := 0; sent < round; sent += 2 * perTick {
			msgs := make([]*pubsub.Message, 0, 2*perTick)
			for range perTick {
				order++
				id := "ord_" + strconv.Itoa(order)
				for _, subject := range []string{orders.SubjectPlaced, orders.SubjectConfirmed} {
					data, err := json.Marshal(orders.Event{OrderID: id, Customer: "ada", Status: "placed", TotalCents: 2490})
					if err != nil {
						b.Fatal(err)
					}
					msgs = append(msgs, &pubsub.Message{Subject: subject, Key: id, Type: subject, Data: data})
				}
			}
			if err := st.bus.Publish(ctx, msgs...); err != nil {
				b.Fatal(err)
			}
			<-t.C
		}
		deadline := time.Now().Add(time.Minute)
		for st.handled.Load() < want { // the last batch lingers: a few polls
			if time.Now().After(deadline) {
				b.Fatalf("%s: %d of %d events recorded in a minute", st.name, st.handled.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, st := range setups { // warm up
		feed(st)
	}
	cpu := make([]time.Duration, len(setups))
	n := make([]int, len(setups))
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		for i, st := range setups {
			t0 := cpumeter.Process()
			feed(st)
			cpu[i] += cpumeter.Process() - t0
			n[i] += round
		}
	}
	b.StopTimer()
	for i, st := range setups {
		b.ReportMetric(float64(cpu[i].Microseconds())/float64(n[i]), st.name+"-cpu-µs/event")
	}
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), fmt.Sprintf("%s/%s", setups[1].name, setups[0].name))
}
