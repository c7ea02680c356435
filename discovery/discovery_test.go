package discovery_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/discovery"
)

func TestInstance(t *testing.T) {
	tests := []struct {
		name    string
		in      discovery.Instance
		valid   bool
		weight  float64
		version string
	}{
		{"plain", discovery.Instance{Service: "addsvc", ID: "a-1", Addr: "h:1"}, true, 1, ""},
		{"metadata", discovery.Instance{Service: "addsvc", ID: "a", Addr: "h:1", Metadata: map[string]string{"version": "v2", "weight": "2.5"}}, true, 2.5, "v2"},
		{"bad weight", discovery.Instance{Service: "addsvc", ID: "a", Addr: "h:1", Metadata: map[string]string{"weight": "0"}}, true, 1, ""},
		{"NaN weight", discovery.Instance{Service: "addsvc", ID: "a", Addr: "h:1", Metadata: map[string]string{"weight": "NaN"}}, true, 1, ""},
		{"no service", discovery.Instance{ID: "a", Addr: "h:1"}, false, 1, ""},
		{"no address", discovery.Instance{Service: "addsvc", ID: "a"}, false, 1, ""},
		{"dot in id", discovery.Instance{Service: "addsvc", ID: "a.b", Addr: "h:1"}, false, 1, ""},
		{"slash in service", discovery.Instance{Service: "add/svc", ID: "a", Addr: "h:1"}, false, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.Validate(); (err == nil) != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if w := tt.in.Weight(); w != tt.weight {
				t.Errorf("Weight() = %v, want %v", w, tt.weight)
			}
			if v := tt.in.Version(); v != tt.version {
				t.Errorf("Version() = %q, want %q", v, tt.version)
			}
		})
	}
	if id := discovery.SafeID("[::1]:8081"); id != "___1__8081" {
		t.Errorf("SafeID = %q", id)
	}
}

// TestFeedLatestWins: a receiver that falls behind gets the newest set, and equal sets are
// not sent again.
func TestFeedLatestWins(t *testing.T) {
	f := discovery.NewFeed()
	f.Send(nil)
	f.Send([]discovery.Instance{{ID: "b"}, {ID: "a"}})
	f.Send([]discovery.Instance{{ID: "c"}})
	got := <-f.C()
	if len(got) != 1 || got[0].ID != "c" {
		t.Fatalf("got %v, want the latest set [c]", got)
	}
	f.Send([]discovery.Instance{{ID: "c"}})
	select {
	case s := <-f.C():
		t.Fatalf("an equal set was sent again: %v", s)
	default:
	}
	f.Send([]discovery.Instance{{ID: "b"}, {ID: "a"}})
	if got := <-f.C(); got[0].ID != "a" || got[1].ID != "b" {
		t.Errorf("set not sorted by ID: %v", got)
	}
	f.Close()
	f.Close()
	f.Send(nil)
	if _, ok := <-f.C(); ok {
		t.Error("channel open after Close")
	}
}

// flakyLease fails Register and Refresh while down is set, and counts the calls.
type flakyLease struct {
	down                          atomic.Bool
	registers, refreshes, deletes atomic.Int32
}

var errDown = errors.New("store down")

func (l *flakyLease) Register(context.Context) error {
	l.registers.Add(1)
	if l.down.Load() {
		return errDown
	}
	return nil
}

func (l *flakyLease) Refresh(context.Context) error {
	l.refreshes.Add(1)
	if l.down.Load() {
		return errDown
	}
	return nil
}

func (l *flakyLease) Deregister(context.Context) error {
	l.deletes.Add(1)
	return nil
}

// TestKeep drives the heartbeat loop through an outage: refreshes fail, registration is
// retried with backoff until the store is back, then heartbeats resume; Deregister stops
// the loop and deletes once.
func TestKeep(t *testing.T) {
	l := &flakyLease{}
	var mu sync.Mutex
	var regs []int
	inst := discovery.Instance{Service: "s", ID: "a", Addr: "h:1"}
	reg, err := discovery.Keep(context.Background(), inst, l, discovery.KeepOptions{
		TTL: 30 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		OnRegister: func(n int) { mu.Lock(); regs = append(regs, n); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Instance().ID != "a" {
		t.Errorf("Instance() = %+v", reg.Instance())
	}
	waitFor(t, func() bool { return l.refreshes.Load() >= 3 })
	l.down.Store(true)
	before := l.registers.Load()
	waitFor(t, func() bool { return l.registers.Load() >= before+5 }) // retrying, still down
	l.down.Store(false)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(regs) == 2 })
	r := l.refreshes.Load()
	waitFor(t, func() bool { return l.refreshes.Load() >= r+2 }) // heartbeats again
	if err := reg.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = reg.Deregister(context.Background())
	if n := l.deletes.Load(); n != 1 {
		t.Errorf("%d deletes, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if regs[0] != 1 || regs[1] != 2 {
		t.Errorf("registrations %v, want [1 2]", regs)
	}
	// The first Register failing fails Keep.
	l.down.Store(true)
	if _, err := discovery.Keep(context.Background(), inst, l, discovery.KeepOptions{}); !errors.Is(err, errDown) {
		t.Errorf("Keep with the store down: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	for attempt := range 10 {
		d := discovery.Backoff(10*time.Millisecond, 100*time.Millisecond, attempt)
		hi := min(10*time.Millisecond<<attempt, 100*time.Millisecond)
		if d < 10*time.Millisecond || d > hi {
			t.Errorf("attempt %d: %v not in [10ms, %v]", attempt, d, hi)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
