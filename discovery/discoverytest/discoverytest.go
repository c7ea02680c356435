// Package discoverytest is the test suite that every discovery.Registry backend passes: it
// registers, watches, deregisters and lets registrations expire against a real backend.
package discoverytest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/discovery"
)

// Backend describes the backend under test.
type Backend struct {
	// New returns a registry client of the backend. Each call returns a new client of the
	// same store, as separate processes would have.
	New func(t *testing.T) discovery.Registry
	// NewCrashable, if set, returns a registry client and a function that cuts it off from
	// the store at once, without deregistering, as if its process died. The expiry test
	// needs it.
	NewCrashable func(t *testing.T) (discovery.Registry, func())
	// TTL is the time to live registrations get in the tests; default 2s.
	TTL time.Duration
	// Wait bounds how long a change may take to reach a watcher; default 10s (plus the TTL
	// for expiry).
	Wait time.Duration
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	if b.TTL <= 0 {
		b.TTL = 2 * time.Second
	}
	if b.Wait <= 0 {
		b.Wait = 10 * time.Second
	}
	t.Run("RegisterWatchDeregister", func(t *testing.T) { registerWatchDeregister(t, b) })
	t.Run("WatchBeforeAndAfter", func(t *testing.T) { watchBeforeAndAfter(t, b) })
	t.Run("ServicesApart", func(t *testing.T) { servicesApart(t, b) })
	t.Run("WatchEndsWithContext", func(t *testing.T) { watchEndsWithContext(t, b) })
	t.Run("Expiry", func(t *testing.T) {
		if b.NewCrashable == nil {
			t.Skip("backend cannot simulate a crash")
		}
		expiry(t, b)
	})
}

// Service returns a service name made from the test's name, so that tests may share a
// store.
func Service(t *testing.T) string { return discovery.SafeID(t.Name()) }

// Follower keeps the latest set received from a watch channel.
type Follower struct {
	mu     sync.Mutex
	set    []discovery.Instance
	got    bool
	closed bool
}

// Follow receives from ch until it is closed.
func Follow(ch <-chan []discovery.Instance) *Follower {
	f := &Follower{}
	go func() {
		for set := range ch {
			f.mu.Lock()
			f.set, f.got = set, true
			f.mu.Unlock()
		}
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
	}()
	return f
}

// Closed reports whether the channel was closed.
func (f *Follower) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Expect waits until the latest set has exactly the given instance IDs and returns it, or
// fails the test after wait.
func (f *Follower) Expect(t testing.TB, wait time.Duration, ids ...string) []discovery.Instance {
	t.Helper()
	slices.Sort(ids)
	deadline := time.Now().Add(wait)
	for {
		f.mu.Lock()
		set, got := f.set, f.got
		f.mu.Unlock()
		have := IDs(set)
		if got && slices.Equal(have, ids) {
			return set
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the instances are %v, want %v", wait, have, ids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// IDs returns the IDs of set, sorted.
func IDs(set []discovery.Instance) []string {
	ids := make([]string, 0, len(set))
	for _, in := range set {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	return ids
}

func inst(service, id string) discovery.Instance {
	return discovery.Instance{
		Service:  service,
		ID:       id,
		Addr:     "127.0.0.1:" + fmt.Sprint(10000+len(id)),
		Metadata: map[string]string{discovery.MetaVersion: "v1", discovery.MetaZone: "z1", discovery.MetaWeight: "2"},
	}
}

func registerWatchDeregister(t *testing.T, b Backend) {
	ctx := t.Context()
	svc := Service(t)
	r := b.New(t)
	ch, err := b.New(t).Watch(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	w := Follow(ch)
	w.Expect(t, b.Wait)
	ra, err := r.Register(ctx, inst(svc, "a"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := r.Register(ctx, inst(svc, "b"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	set := w.Expect(t, b.Wait, "a", "b")
	if !set[0].Equal(inst(svc, "a")) {
		t.Errorf("watched %+v, registered %+v", set[0], inst(svc, "a"))
	}
	if got := ra.Instance(); !got.Equal(inst(svc, "a")) {
		t.Errorf("Registration.Instance = %+v", got)
	}
	// Heartbeats keep the registrations for several TTLs.
	time.Sleep(2 * b.TTL)
	w.Expect(t, b.Wait, "a", "b")
	if err := ra.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ra.Deregister(ctx); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
	w.Expect(t, b.Wait, "b")
	if err := rb.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	w.Expect(t, b.Wait)
}

func watchBeforeAndAfter(t *testing.T, b Backend) {
	ctx := t.Context()
	svc := Service(t)
	r := b.New(t)
	reg, err := r.Register(ctx, inst(svc, "early"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister(context.Background())
	ch, err := b.New(t).Watch(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	w := Follow(ch)
	w.Expect(t, b.Wait, "early")
	// An instance without an ID gets one from its address.
	noID := inst(svc, "")
	noID.Addr = "127.0.0.1:7777"
	reg2, err := r.Register(ctx, noID, b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	defer reg2.Deregister(context.Background())
	if id := reg2.Instance().ID; id != "127_0_0_1_7777" {
		t.Errorf("default ID %q", id)
	}
	w.Expect(t, b.Wait, "127_0_0_1_7777", "early")
	if _, err := r.Register(ctx, discovery.Instance{Service: svc, ID: "bad.id", Addr: "x:1"}, b.TTL); err == nil {
		t.Error("registering an ID with a dot succeeded")
	}
}

func servicesApart(t *testing.T, b Backend) {
	ctx := t.Context()
	s1, s2 := Service(t)+"x", Service(t)+"y"
	r := b.New(t)
	ch1, err := r.Watch(ctx, s1)
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := r.Watch(ctx, s2)
	if err != nil {
		t.Fatal(err)
	}
	w1, w2 := Follow(ch1), Follow(ch2)
	w1.Expect(t, b.Wait)
	w2.Expect(t, b.Wait)
	reg, err := r.Register(ctx, inst(s1, "one"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister(context.Background())
	w1.Expect(t, b.Wait, "one")
	time.Sleep(100 * time.Millisecond)
	w2.Expect(t, b.Wait)
}

func watchEndsWithContext(t *testing.T, b Backend) {
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := b.New(t).Watch(ctx, Service(t))
	if err != nil {
		t.Fatal(err)
	}
	w := Follow(ch)
	w.Expect(t, b.Wait)
	cancel()
	deadline := time.Now().Add(b.Wait)
	for !w.Closed() {
		if time.Now().After(deadline) {
			t.Fatal("watch channel not closed after the context ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func expiry(t *testing.T, b Backend) {
	ctx := t.Context()
	svc := Service(t)
	ch, err := b.New(t).Watch(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	w := Follow(ch)
	w.Expect(t, b.Wait)
	r, crash := b.NewCrashable(t)
	doomed, err := r.Register(ctx, inst(svc, "doomed"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	// Stop the heartbeat of the "dead process" at the end; its Deregister fails.
	defer doomed.Deregister(context.Background())
	keep, err := b.New(t).Register(ctx, inst(svc, "alive"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Deregister(context.Background())
	w.Expect(t, b.Wait, "alive", "doomed")
	crash()
	w.Expect(t, b.Wait+2*b.TTL, "alive")
}
