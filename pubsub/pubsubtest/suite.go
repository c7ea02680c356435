// Package pubsubtest is the conformance suite that every pubsub backend and deployment
// passes: the embedded server, and a NATS cluster with a node stopped mid-test.
package pubsubtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/pubsub"
)

// Backend is a publisher and subscriber under test.
type Backend interface {
	pubsub.Publisher
	pubsub.Subscriber
	// DeadLetterSubject returns the subject a group's dead letters go to.
	DeadLetterSubject(group string) string
}

// Options configures Run.
type Options struct {
	// New returns a fresh backend (its own connection) on the shared bus; it registers
	// its own cleanup with t.
	New func(t *testing.T) Backend
	// Prefix starts every subject the suite uses, such as "events."; the backend's stream
	// must store Prefix + ">".
	Prefix string
	// Disrupt, if set, is called once, in the middle of the volume test, to break
	// something the backend must survive, such as stopping a cluster node.
	Disrupt func(t *testing.T)
	// Wait bounds each wait for deliveries; default 30s.
	Wait time.Duration
}

var seq atomic.Int64

// Run runs the suite.
func Run(t *testing.T, o Options) {
	if o.Wait == 0 {
		o.Wait = 30 * time.Second
	}
	subject := func(t *testing.T) string {
		return o.Prefix + "t" + strconv.FormatInt(time.Now().UnixNano(), 36) + "x" + strconv.FormatInt(seq.Add(1), 10)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, o Options, subject string)
	}{
		{"PublishSubscribe", testPublishSubscribe},
		{"Redelivery", testRedelivery},
		{"DeadLetter", testDeadLetter},
		{"Ordering", testOrdering},
		{"KeyOrder", testKeyOrder},
		{"Deduplication", testDedup},
		{"ManySubscribers", testManySubscribers},
		{"StopRestart", testStopRestart},
		{"Volume", testVolume},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, o, subject(t)) })
	}
}

// collector records deliveries by message id.
type collector struct {
	mu    sync.Mutex
	byID  map[string]int
	msgs  []*pubsub.Message
	total int
	ch    chan struct{}
}

func newCollector() *collector { return &collector{byID: map[string]int{}, ch: make(chan struct{}, 1)} }

func (c *collector) add(m *pubsub.Message) {
	c.mu.Lock()
	c.byID[m.ID]++
	c.msgs = append(c.msgs, m)
	c.total++
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) handler(ctx context.Context, m *pubsub.Message) error { c.add(m); return nil }

func (c *collector) unique() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// waitUnique waits until n distinct ids arrived.
func (c *collector) waitUnique(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for c.unique() < n {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("received %d distinct messages, want %d", c.unique(), n)
		}
	}
}

func publish(t *testing.T, p pubsub.Publisher, msgs ...*pubsub.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

func subscribe(t *testing.T, s pubsub.Subscriber, subject, group string, h pubsub.Handler, opts ...pubsub.SubscribeOption) pubsub.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := s.Subscribe(context.Background(), subject, group, h, opts...)
	_ = ctx
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, sub) })
	return sub
}

func stop(t *testing.T, sub pubsub.Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.Stop(ctx); err != nil {
		t.Error(err)
	}
}

func msgs(subject string, n int, key func(i int) string) []*pubsub.Message {
	out := make([]*pubsub.Message, n)
	for i := range out {
		out[i] = &pubsub.Message{Subject: subject, Data: []byte(strconv.Itoa(i))}
		if key != nil {
			out[i].Key = key(i)
		}
	}
	return out
}

func testPublishSubscribe(t *testing.T, o Options, subject string) {
	b := o.New(t)
	c := newCollector()
	subscribe(t, b, subject, "g", c.handler)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	want := &pubsub.Message{
		ID: "id-1", Subject: subject, Key: "k1", Type: "com.example.created", Source: "/test",
		Time: at, ContentType: "text/plain", Data: []byte("hello"),
		Headers: map[string]string{"x-extra": "v"},
	}
	publish(t, b, want)
	publish(t, b, msgs(subject, 20, nil)...)
	c.waitUnique(t, 21, o.Wait)
	c.mu.Lock()
	defer c.mu.Unlock()
	var got *pubsub.Message
	for _, m := range c.msgs {
		if m.ID == "id-1" {
			got = m
		}
	}
	if got == nil {
		t.Fatal("message id-1 not received")
	}
	checks := []struct{ field, got, want string }{
		{"Subject", got.Subject, want.Subject},
		{"Key", got.Key, want.Key},
		{"Type", got.Type, want.Type},
		{"Source", got.Source, want.Source},
		{"Time", got.Time.String(), at.String()},
		{"ContentType", got.ContentType, want.ContentType},
		{"Data", string(got.Data), "hello"},
		{"x-extra", got.Header("x-extra"), "v"},
		{"Group", got.Group, "g"},
		{"Attempt", strconv.Itoa(got.Attempt), "1"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %q, want %q", ck.field, ck.got, ck.want)
		}
	}
	if got.Sequence == 0 {
		t.Error("Sequence not set")
	}
	for id, n := range c.byID {
		if n != 1 {
			t.Errorf("message %s delivered %d times", id, n)
		}
	}
}

func testRedelivery(t *testing.T, o Options, subject string) {
	b := o.New(t)
	var mu sync.Mutex
	attempts := map[string][]int{}
	done := make(chan struct{}, 10)
	subscribe(t, b, subject, "g", func(ctx context.Context, m *pubsub.Message) error {
		mu.Lock()
		attempts[m.ID] = append(attempts[m.ID], m.Attempt)
		mu.Unlock()
		if m.Attempt < 3 {
			return errors.New("not yet")
		}
		done <- struct{}{}
		return nil
	}, pubsub.Backoff(10*time.Millisecond, 20*time.Millisecond), pubsub.MaxAttempts(5))
	publish(t, b, msgs(subject, 2, nil)...)
	for range 2 {
		select {
		case <-done:
		case <-time.After(o.Wait):
			t.Fatal("no successful redelivery")
		}
	}
	time.Sleep(100 * time.Millisecond) // no further deliveries after the ack
	mu.Lock()
	defer mu.Unlock()
	for id, a := range attempts {
		if fmt.Sprint(a) != "[1 2 3]" {
			t.Errorf("message %s attempts %v, want [1 2 3]", id, a)
		}
	}
}

func testDeadLetter(t *testing.T, o Options, subject string) {
	b := o.New(t)
	var calls atomic.Int32
	subscribe(t, b, subject, "dl", func(ctx context.Context, m *pubsub.Message) error {
		calls.Add(1)
		if string(m.Data) == "poison" {
			return pubsub.Permanent(errors.New("cannot parse"))
		}
		return errors.New("always fails")
	}, pubsub.Backoff(5*time.Millisecond), pubsub.MaxAttempts(3))
	dead := newCollector()
	subscribe(t, b, b.DeadLetterSubject("dl"), "dlq-reader", dead.handler)
	publish(t, b, &pubsub.Message{ID: "fails", Subject: subject, Data: []byte("x")},
		&pubsub.Message{ID: "poison", Subject: subject, Data: []byte("poison")})
	dead.waitUnique(t, 2, o.Wait)
	dead.mu.Lock()
	for _, m := range dead.msgs {
		if m.Header(pubsub.HeaderDeadSubject) != subject || m.Header(pubsub.HeaderDeadGroup) != "dl" || m.Header(pubsub.HeaderDeadError) == "" {
			t.Errorf("dead letter %s headers %v", m.ID, m.Headers)
		}
	}
	dead.mu.Unlock()
	if n := calls.Load(); n != 4 { // 3 attempts + 1 for the permanent failure
		t.Errorf("handler called %d times, want 4", n)
	}
}

// testOrdering publishes interleaved messages for several keys and fails some first
// attempts: each key's messages must still be handled in publish order, by a group of two
// members.
func testOrdering(t *testing.T, o Options, subject string) {
	b := o.New(t)
	const keys, per = 6, 30
	var mu sync.Mutex
	last := map[string]int{}
	seen := map[string]bool{}
	var handled atomic.Int32
	errs := make(chan error, 10)
	h := func(ctx context.Context, m *pubsub.Message) error {
		n, _ := strconv.Atoi(string(m.Data))
		if n%7 == 3 && m.Attempt == 1 {
			return errors.New("transient")
		}
		mu.Lock()
		defer mu.Unlock()
		if seen[m.ID] {
			return nil
		}
		if prev, ok := last[m.Key]; ok && n <= prev {
			select {
			case errs <- fmt.Errorf("key %s: %d after %d", m.Key, n, prev):
			default:
			}
		}
		last[m.Key], seen[m.ID] = n, true
		handled.Add(1)
		return nil
	}
	b2 := o.New(t)
	subscribe(t, b, subject, "ord", h, pubsub.Ordered(), pubsub.Backoff(5*time.Millisecond))
	subscribe(t, b2, subject, "ord", h, pubsub.Ordered(), pubsub.Backoff(5*time.Millisecond))
	var all []*pubsub.Message
	for i := range per {
		for k := range keys {
			all = append(all, &pubsub.Message{Subject: subject, Key: "key-" + strconv.Itoa(k), Data: []byte(strconv.Itoa(i))})
		}
	}
	publish(t, b, all...)
	deadline := time.After(o.Wait)
	for handled.Load() < keys*per {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-deadline:
			t.Fatalf("handled %d of %d", handled.Load(), keys*per)
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// testKeyOrder publishes many keys' messages interleaved to a default subscription with
// concurrency 8, and fails some attempts so that they are redelivered: a key's message is
// never handled before every earlier message of its key has succeeded, while different
// keys are handled in parallel. Duplicates of messages already handled are allowed
// (delivery is at least once).
func testKeyOrder(t *testing.T, o Options, subject string) {
	const keys, per, concurrency = 200, 50, 8
	b := o.New(t)
	var (
		mu               sync.Mutex
		ok               = map[string][]bool{} // per key: which messages succeeded
		next             = map[string]int{}    // per key: the first message not yet succeeded
		handled          int
		violations       int
		first            error
		inFlight, maxInF int
		failures         int
	)
	finished := make(chan struct{})
	h := func(ctx context.Context, m *pubsub.Message) error {
		n, err := strconv.Atoi(string(m.Data))
		if err != nil || n < 0 || n >= per {
			return pubsub.Permanent(fmt.Errorf("bad message %q", m.Data))
		}
		mu.Lock()
		inFlight++
		maxInF = max(maxInF, inFlight)
		if nx := next[m.Key]; n > nx {
			violations++
			if first == nil {
				first = fmt.Errorf("key %s: message %d handled before %d succeeded (attempt %d)", m.Key, n, nx, m.Attempt)
			}
		}
		mu.Unlock()
		time.Sleep(100 * time.Microsecond) // give the other keys' handlers a chance to overlap
		mu.Lock()
		defer mu.Unlock()
		inFlight--
		if ok[m.Key] == nil {
			ok[m.Key] = make([]bool, per)
		}
		if ok[m.Key][n] { // a duplicate of a message already handled
			return nil
		}
		// Fail some messages' first attempts, and a few twice, as a flaky dependency would.
		if (n%13 == 5 && m.Attempt == 1) || (n%29 == 7 && m.Attempt <= 2) {
			failures++
			return errors.New("transient")
		}
		ok[m.Key][n] = true
		for next[m.Key] < per && ok[m.Key][next[m.Key]] {
			next[m.Key]++
		}
		if handled++; handled == keys*per {
			close(finished)
		}
		return nil
	}
	subscribe(t, b, subject, "keyorder", h, pubsub.Concurrency(concurrency),
		pubsub.Backoff(5*time.Millisecond, 20*time.Millisecond), pubsub.MaxAttempts(10))
	all := make([]*pubsub.Message, 0, keys*per)
	for i := range per {
		for k := range keys {
			all = append(all, &pubsub.Message{Subject: subject, Key: "key-" + strconv.Itoa(k), Data: []byte(strconv.Itoa(i))})
		}
	}
	for i := 0; i < len(all); i += 1000 {
		publish(t, b, all[i:min(i+1000, len(all))]...)
	}
	select {
	case <-finished:
	case <-time.After(4 * o.Wait):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("handled %d of %d (%d order violations)", handled, keys*per, violations)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d transient failures, at most %d handlers at once", failures, maxInF)
	if violations > 0 {
		t.Errorf("%d per-key order violations; first: %v", violations, first)
	}
	if maxInF < 2 {
		t.Errorf("at most %d handler ran at once; different keys must run in parallel", maxInF)
	}
}

func testDedup(t *testing.T, o Options, subject string) {
	b := o.New(t)
	c := newCollector()
	subscribe(t, b, subject, "g", c.handler)
	m := func() *pubsub.Message { return &pubsub.Message{ID: "same", Subject: subject, Data: []byte("x")} }
	publish(t, b, m(), m())
	publish(t, b, m())
	publish(t, b, &pubsub.Message{ID: "other", Subject: subject})
	c.waitUnique(t, 2, o.Wait)
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID["same"] != 1 {
		t.Fatalf("duplicate delivered %d times", c.byID["same"])
	}
}

func testManySubscribers(t *testing.T, o Options, subject string) {
	const n, members = 300, 3
	shared := newCollector()
	per := make([]atomic.Int32, members)
	for i := range members {
		b := o.New(t)
		subscribe(t, b, subject, "shared", func(ctx context.Context, m *pubsub.Message) error {
			per[i].Add(1)
			return shared.handler(ctx, m)
		}, pubsub.Concurrency(2))
	}
	fan := []*collector{newCollector(), newCollector()}
	b := o.New(t)
	subscribe(t, b, subject, "other", fan[0].handler)
	subscribe(t, b, subject, "", fan[1].handler) // ephemeral: everything from now on
	publish(t, b, msgs(subject, n, nil)...)
	shared.waitUnique(t, n, o.Wait)
	for _, f := range fan {
		f.waitUnique(t, n, o.Wait)
	}
	time.Sleep(100 * time.Millisecond)
	shared.mu.Lock()
	if shared.total != n {
		t.Errorf("group delivered %d messages for %d published", shared.total, n)
	}
	shared.mu.Unlock()
	busy := 0
	for i := range per {
		if per[i].Load() > 0 {
			busy++
		}
	}
	t.Logf("per member: %d %d %d", per[0].Load(), per[1].Load(), per[2].Load())
	if busy < 2 {
		t.Errorf("only %d of %d members received messages", busy, members)
	}
}

func testStopRestart(t *testing.T, o Options, subject string) {
	b := o.New(t)
	c := newCollector()
	sub := subscribe(t, b, subject, "restart", c.handler)
	publish(t, b, msgs(subject, 50, nil)...)
	c.waitUnique(t, 50, o.Wait)
	stop(t, sub)
	publish(t, b, msgs(subject, 50, nil)...) // while nobody listens
	b2 := o.New(t)
	c2 := newCollector()
	subscribe(t, b2, subject, "restart", c2.handler)
	c2.waitUnique(t, 50, o.Wait)
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	c2.mu.Lock()
	defer c2.mu.Unlock()
	for id := range c2.byID {
		if c.byID[id] > 0 {
			t.Errorf("message %s acked before the stop was delivered again", id)
		}
	}
}

// testVolume publishes in batches from several goroutines while a group consumes, and
// calls Disrupt half-way: every message arrives.
func testVolume(t *testing.T, o Options, subject string) {
	const writers, batches, size = 4, 10, 100
	b := o.New(t)
	c := newCollector()
	subscribe(t, b, subject, "vol", c.handler, pubsub.Concurrency(8))
	var disrupt sync.Once
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range batches {
				if w == 0 && i == batches/2 && o.Disrupt != nil {
					disrupt.Do(func() { o.Disrupt(t) })
				}
				batch := msgs(subject, size, nil)
				for j, m := range batch {
					m.ID = fmt.Sprintf("v-%d-%d-%d", w, i, j)
				}
				publish(t, b, batch...)
			}
		})
	}
	wg.Wait()
	c.waitUnique(t, writers*batches*size, 2*o.Wait)
}
