// Package discoverytest is the test suite that every discovery.Registry backend passes: it
// registers, watches, deregisters and lets registrations expire against a real backend.
package discoverytest

import (
	"context"
	"fmt"
	"slices"
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

// Expect receives from ch until a set with exactly the given instance IDs arrives, or fails
// the test after wait.
func Expect(t *testing.T, ch <-chan []discovery.Instance, wait time.Duration, ids ...string) []discovery.Instance {
	t.Helper()
	slices.Sort(ids)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var last []string
	for {
		select {
		case set, ok := <-ch:
			t.Logf("got %v", set)
			if !ok {
				t.Fatalf("watch closed; want %v (last %v)", ids, last)
			}
			last = last[:0]
			for _, in := range set {
				last = append(last, in.ID)
			}
			if slices.Equal(last, ids) {
				return set
			}
		case <-timer.C:
			t.Fatalf("after %v the instances are %v, want %v", wait, last, ids)
		}
	}
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
	Expect(t, ch, b.Wait)
	ra, err := r.Register(ctx, inst(svc, "a"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := r.Register(ctx, inst(svc, "b"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	set := Expect(t, ch, b.Wait, "a", "b")
	if !set[0].Equal(inst(svc, "a")) {
		t.Errorf("watched %+v, registered %+v", set[0], inst(svc, "a"))
	}
	if got := ra.Instance(); !got.Equal(inst(svc, "a")) {
		t.Errorf("Registration.Instance = %+v", got)
	}
	// Heartbeats keep the registrations for several TTLs.
	time.Sleep(2 * b.TTL)
	Expect(t, ch, b.Wait, "a", "b")
	if err := ra.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ra.Deregister(ctx); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
	Expect(t, ch, b.Wait, "b")
	if err := rb.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	Expect(t, ch, b.Wait)
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
	Expect(t, ch, b.Wait, "early")
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
	Expect(t, ch, b.Wait, "127_0_0_1_7777", "early")
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
	Expect(t, ch1, b.Wait)
	Expect(t, ch2, b.Wait)
	reg, err := r.Register(ctx, inst(s1, "one"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister(context.Background())
	Expect(t, ch1, b.Wait, "one")
	select {
	case set := <-ch2:
		if len(set) != 0 {
			t.Errorf("watch of %s saw %v", s2, set)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

func watchEndsWithContext(t *testing.T, b Backend) {
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := b.New(t).Watch(ctx, Service(t))
	if err != nil {
		t.Fatal(err)
	}
	Expect(t, ch, b.Wait)
	cancel()
	timer := time.NewTimer(b.Wait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatal("watch channel not closed after the context ended")
		}
	}
}

func expiry(t *testing.T, b Backend) {
	ctx := t.Context()
	svc := Service(t)
	ch, err := b.New(t).Watch(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	Expect(t, ch, b.Wait)
	r, crash := b.NewCrashable(t)
	if _, err := r.Register(ctx, inst(svc, "doomed"), b.TTL); err != nil {
		t.Fatal(err)
	}
	keep, err := b.New(t).Register(ctx, inst(svc, "alive"), b.TTL)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Deregister(context.Background())
	Expect(t, ch, b.Wait, "alive", "doomed")
	crash()
	Expect(t, ch, b.Wait+2*b.TTL, "alive")
}
