package binding_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/binding"
	"github.com/svckit/svckit/svcerr"
)

// waitSubscribed sends requests to subject through a request output until an input
// answers, so that core publishes that follow reach it. The probes carry the metadata
// probe=1, which handlers skip.
func waitSubscribed(t *testing.T, out binding.Output) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := out.Invoke(ctx, binding.Request{Metadata: map[string]string{"probe": "1"}})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no subscriber after 10s: %v", err)
		}
	}
}

func TestNATSCoreQueueGroup(t *testing.T) {
	_, nc, srv := startBusServer(t)
	cfg := `
bindings:
  - {name: orders, type: nats-subscribe, subject: orders.created}
  - {name: publish, type: nats-publish, subject: "orders.{kind}"}
`
	deps := binding.Deps{Service: "billing", NATS: nc}
	a, b := mustOpen(t, cfg, deps), mustOpen(t, cfg, deps)
	var mu sync.Mutex
	seen := map[string][]string{} // id -> replicas that got it
	done := make(chan struct{})
	const n = 200
	handler := func(replica string) binding.Handler {
		return func(_ context.Context, e binding.Event) error {
			mu.Lock()
			defer mu.Unlock()
			seen[e.ID] = append(seen[e.ID], replica)
			if len(seen) == n {
				close(done)
			}
			return nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for name, set := range map[string]*binding.Set{"a": a, "b": b} {
		in, _ := set.Input("orders")
		wg.Go(func() {
			if err := in.Run(ctx, handler(name)); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueueMembers(t, srv, "orders.created", "billing-orders", 2) // the default group: SERVICE-NAME
	pub, _ := a.Output("publish")
	for i := range n {
		resp, err := pub.Invoke(context.Background(), binding.Request{Data: []byte("{}"), Metadata: map[string]string{"id": fmt.Sprint("order-", i), "kind": "created"}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Metadata["subject"] != "orders.created" {
			t.Fatalf("subject %q", resp.Metadata["subject"])
		}
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not every message arrived within 20s")
	}
	cancel()
	wg.Wait() // Run returns after draining: every delivery has been handled
	per := map[string]int{}
	for id, got := range seen {
		if len(got) != 1 {
			t.Errorf("%s delivered %d times (%v)", id, len(got), got)
		}
		per[got[0]]++
	}
	if len(seen) != n {
		t.Errorf("%d messages arrived, want %d", len(seen), n)
	}
	if per["a"] == 0 || per["b"] == 0 {
		t.Errorf("the queue group did not spread the messages: %v", per)
	}

	// A subject token from metadata must be one token.
	if _, err := pub.Invoke(context.Background(), binding.Request{Metadata: map[string]string{"kind": "a.b"}}); svcerr.KindOf(err) != svcerr.InvalidArgument {
		t.Errorf("subject token with a dot: %v, want invalid_argument", err)
	}
}

func TestNATSJetStreamRedelivery(t *testing.T) {
	bus, nc := startBus(t)
	set := mustOpen(t, `
bindings:
  - name: audit
    type: nats-subscribe
    subject: events.audit.>
    jetstream: true
    queue: audit
    max_attempts: 5
    backoff: [10ms]
  - {name: publish, type: nats-publish, subject: "events.audit.{kind}", jetstream: true}
`, binding.Deps{Bus: bus})
	dlq, err := nc.SubscribeSync(bus.DeadLetterSubject("audit"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := map[string][]int{}
	ok := make(chan binding.Event, 10)
	in, _ := set.Input("audit")
	runInput(t, in, func(_ context.Context, e binding.Event) error {
		mu.Lock()
		attempts[e.ID] = append(attempts[e.ID], e.Attempt)
		mu.Unlock()
		switch e.Metadata["mode"] {
		case "flaky":
			if e.Attempt < 3 {
				return svcerr.New(svcerr.Unavailable, "try again")
			}
		case "bad":
			return svcerr.New(svcerr.InvalidArgument, "cannot handle this")
		}
		ok <- e
		return nil
	})
	pub, _ := set.Output("publish")
	ctx := context.Background()
	for _, r := range []binding.Request{
		{Data: []byte(`{"n":1}`), Metadata: map[string]string{"id": "flaky-1", "kind": "x", "mode": "flaky"}},
		{Data: []byte(`{"n":2}`), Metadata: map[string]string{"id": "bad-1", "kind": "x", "mode": "bad"}},
	} {
		if _, err := pub.Invoke(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case e := <-ok:
		if e.ID != "flaky-1" || e.Attempt != 3 || string(e.Data) != `{"n":1}` || e.Subject != "events.audit.x" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the flaky message was not redelivered until it succeeded")
	}
	m, err := dlq.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if got := m.Header.Get("svckit-dlq-error"); got == "" || string(m.Data) != `{"n":2}` {
		t.Fatalf("dead letter %q error %q", m.Data, got)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(attempts["flaky-1"]); got != "[1 2 3]" {
		t.Errorf("flaky attempts %s, want [1 2 3]", got)
	}
	if got := fmt.Sprint(attempts["bad-1"]); got != "[1]" {
		t.Errorf("a non-retryable error was retried: attempts %s", got)
	}
}

func TestNATSJetStreamDedup(t *testing.T) {
	bus, _ := startBus(t)
	set := mustOpen(t, `
bindings:
  - {name: publish, type: nats-publish, subject: events.dedup, jetstream: true}
  - {name: consume, type: nats-subscribe, subject: events.dedup, jetstream: true}
`, binding.Deps{Bus: bus, Service: "svc"})
	pub, _ := set.Output("publish")
	ctx := context.Background()
	for _, id := range []string{"a", "a", "b", "a"} {
		if _, err := pub.Invoke(ctx, binding.Request{Data: []byte(id), Metadata: map[string]string{"id": id, "x-trace": "t1"}}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := bus.JetStream().Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("stream has %d messages, want 2 (a and b once each)", info.State.Msgs)
	}
	c := newCollector()
	in, _ := set.Input("consume")
	runInput(t, in, c.handle)
	e1, e2 := c.next(t), c.next(t) // handlers run concurrently: either order
	if e1.ID > e2.ID {
		e1, e2 = e2, e1
	}
	if e1.ID != "a" || e2.ID != "b" || string(e1.Data) != "a" || e1.Metadata["x-trace"] != "t1" {
		t.Fatalf("events %+v %+v", e1, e2)
	}
}

func TestNATSRequestReply(t *testing.T) {
	_, nc := startBus(t)
	set := mustOpen(t, `
bindings:
  - {name: rpc-in, type: nats-subscribe, subject: rpc.do}
  - {name: rpc-out, type: nats-publish, subject: rpc.do, request: true, timeout: 2s}
`, binding.Deps{NATS: nc})
	in, _ := set.Input("rpc-in")
	var calls atomic.Int32
	runInput(t, in, func(_ context.Context, e binding.Event) error {
		calls.Add(1)
		if string(e.Data) == "bad" {
			return svcerr.New(svcerr.FailedPrecondition, "not now")
		}
		return nil
	})
	out, _ := set.Output("rpc-out")
	waitSubscribed(t, out)
	if _, err := out.Invoke(context.Background(), binding.Request{Data: []byte("good")}); err != nil {
		t.Fatalf("good: %v", err)
	}
	_, err := out.Invoke(context.Background(), binding.Request{Data: []byte("bad")})
	if svcerr.KindOf(err) != svcerr.FailedPrecondition {
		t.Fatalf("bad: %v, want failed_precondition", err)
	}
	nc.Close()
	if _, err := out.Invoke(context.Background(), binding.Request{Data: []byte("good")}); svcerr.KindOf(err) != svcerr.Unavailable {
		t.Fatalf("closed connection: %v, want unavailable", err)
	}
}
