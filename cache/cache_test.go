package cache_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/cache"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/svcerr"
)

type user struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

var backends = []struct {
	name string
	open func(t *testing.T) cache.Backend[int, user]
}{
	{"Memory", func(*testing.T) cache.Backend[int, user] { return cache.NewMemory[int, user](1000) }},
	{"KV", func(t *testing.T) cache.Backend[int, user] {
		ctx := context.Background()
		s, err := natsserver.Start(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(context.Background()) })
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		kv, err := cache.KVBucket(ctx, js, "users", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return cache.NewKV[int, user](kv)
	}},
}

// db is the source of truth the loaders read; it counts reads per key.
type db struct {
	mu    sync.Mutex
	reads map[int]int
	gate  chan struct{}
}

func (d *db) load(ctx context.Context, id int) (user, error) {
	if d.gate != nil {
		<-d.gate
	}
	d.mu.Lock()
	d.reads[id]++
	d.mu.Unlock()
	switch {
	case id < 0:
		return user{}, svcerr.New(svcerr.NotFound, "no such user")
	case id == 0:
		return user{}, errors.New("database down")
	}
	return user{ID: id, Name: fmt.Sprint("user", id)}, nil
}

func (d *db) count(id int) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads[id]
}

func TestCacheAside(t *testing.T) {
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			ctx := context.Background()
			d := &db{reads: map[int]int{}}
			c := cache.New(bc.open(t), cache.WithTTL(time.Hour))
			for range 3 {
				u, err := c.Get(ctx, 1, d.load)
				if err != nil || u.Name != "user1" {
					t.Fatalf("Get: %+v %v", u, err)
				}
			}
			if d.count(1) != 1 {
				t.Errorf("%d loads, want 1", d.count(1))
			}
			// Negative caching.
			for range 3 {
				if _, err := c.Get(ctx, -1, d.load); !cache.IsNotFound(err) {
					t.Fatalf("missing user: %v", err)
				}
			}
			if d.count(-1) != 1 {
				t.Errorf("missing user loaded %d times, want 1", d.count(-1))
			}
			// Other errors are not cached.
			for range 2 {
				if _, err := c.Get(ctx, 0, d.load); err == nil || cache.IsNotFound(err) {
					t.Fatalf("failing load: %v", err)
				}
			}
			if d.count(0) != 2 {
				t.Errorf("failing load ran %d times, want 2", d.count(0))
			}
			// Delete and Set.
			c.Delete(ctx, 1)
			c.Get(ctx, 1, d.load)
			if d.count(1) != 2 {
				t.Errorf("after Delete: %d loads", d.count(1))
			}
			c.Set(ctx, 1, user{ID: 1, Name: "renamed"})
			if u, _ := c.Get(ctx, 1, d.load); u.Name != "renamed" || d.count(1) != 2 {
				t.Errorf("after Set: %+v, %d loads", u, d.count(1))
			}
			if s := c.Stats(); s.Hits < 3 || s.NegativeHits != 2 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			ctx := context.Background()
			d := &db{reads: map[int]int{}}
			c := cache.New(bc.open(t), cache.WithTTL(20*time.Millisecond), cache.WithNegativeTTL(20*time.Millisecond))
			c.Get(ctx, 1, d.load)
			c.Get(ctx, -1, d.load)
			time.Sleep(30 * time.Millisecond) // past TTL + 10% jitter
			c.Get(ctx, 1, d.load)
			c.Get(ctx, -1, d.load)
			if d.count(1) != 2 || d.count(-1) != 2 {
				t.Errorf("loads after expiry: %d, %d; want 2, 2", d.count(1), d.count(-1))
			}
		})
	}
}

func TestSingleFlight(t *testing.T) {
	for _, bc := range backends {
		t.Run(bc.name, func(t *testing.T) {
			d := &db{reads: map[int]int{}, gate: make(chan struct{})}
			c := cache.New(bc.open(t))
			const callers = 50
			var wg sync.WaitGroup
			var bad atomic.Int32
			for range callers {
				wg.Go(func() {
					if u, err := c.Get(context.Background(), 7, d.load); err != nil || u.ID != 7 {
						bad.Add(1)
					}
				})
			}
			// Let the first load through once every caller waits for it.
			for c.Stats().Shared < callers-1 {
				time.Sleep(time.Millisecond)
			}
			close(d.gate)
			wg.Wait()
			if d.count(7) != 1 || bad.Load() != 0 {
				t.Fatalf("%d loads for %d concurrent Gets, %d bad results", d.count(7), callers, bad.Load())
			}
		})
	}
}

// TestCallerGivesUp: a caller whose context ends stops waiting, but the load goes on and
// its result is cached for the next caller.
func TestCallerGivesUp(t *testing.T) {
	d := &db{reads: map[int]int{}, gate: make(chan struct{})}
	c := cache.New[int, user](cache.NewMemory[int, user](10))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := c.Get(ctx, 3, d.load); errc <- err }()
	for c.Stats().Loads == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v", err)
	}
	close(d.gate)
	for {
		if u, err := c.Get(context.Background(), 3, d.load); err != nil || u.ID != 3 {
			t.Fatalf("%+v %v", u, err)
		}
		if c.Stats().Hits > 0 || d.count(3) > 1 {
			break
		}
	}
	if d.count(3) != 1 {
		t.Errorf("%d loads", d.count(3))
	}
}

// recorder is a Backend that records the entries it is given.
type recorder struct {
	cache.Backend[int, user]
	mu      sync.Mutex
	expires []time.Duration
}

func (r *recorder) Set(ctx context.Context, k int, e cache.Entry[user]) error {
	r.mu.Lock()
	r.expires = append(r.expires, time.Until(e.Expires))
	r.mu.Unlock()
	return r.Backend.Set(ctx, k, e)
}

func TestJitter(t *testing.T) {
	tests := []struct {
		jitter float64
		lo, hi time.Duration
	}{
		{0, 59 * time.Minute, time.Hour},
		{0.1, 54 * time.Minute, 66 * time.Minute},
		{0.5, 30 * time.Minute, 90 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.jitter), func(t *testing.T) {
			rec := &recorder{Backend: cache.NewMemory[int, user](1000)}
			c := cache.New[int, user](rec, cache.WithTTL(time.Hour), cache.WithJitter(tc.jitter))
			d := &db{reads: map[int]int{}}
			for i := 1; i <= 200; i++ {
				c.Get(context.Background(), i, d.load)
			}
			distinct := map[time.Duration]bool{}
			for _, e := range rec.expires {
				if e < tc.lo || e > tc.hi {
					t.Fatalf("TTL %v outside [%v, %v]", e, tc.lo, tc.hi)
				}
				distinct[e.Round(time.Second)] = true
			}
			if tc.jitter > 0 && len(distinct) < 10 {
				t.Errorf("only %d distinct TTLs", len(distinct))
			}
		})
	}
}

func TestLRU(t *testing.T) {
	ctx := context.Background()
	m := cache.NewMemory[string, int](2)
	exp := cache.Entry[int]{Expires: time.Now().Add(time.Hour)}
	m.Set(ctx, "a", exp)
	m.Set(ctx, "b", exp)
	m.Get(ctx, "a") // a is now more recent than b
	m.Set(ctx, "c", exp)
	for key, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, ok, _ := m.Get(ctx, key); ok != want {
			t.Errorf("%s cached = %v, want %v", key, ok, want)
		}
	}
	if m.Len() != 2 {
		t.Errorf("Len = %d", m.Len())
	}
}

func TestKVOddKeys(t *testing.T) {
	ctx := context.Background()
	s, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(ctx)
	nc, _ := s.Connect()
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := cache.KVBucket(ctx, js, "odd", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(cache.NewKV[string, string](kv))
	for _, k := range []string{"plain", "with space", "a.b", "ü/x", ".lead"} {
		v, err := c.Get(ctx, k, func(ctx context.Context, k string) (string, error) { return "v:" + k, nil })
		if err != nil || v != "v:"+k {
			t.Errorf("%q: %q %v", k, v, err)
		}
		v, _ = c.Get(ctx, k, func(ctx context.Context, k string) (string, error) { return "reloaded", nil })
		if v != "v:"+k {
			t.Errorf("%q not cached: %q", k, v)
		}
	}
}

func BenchmarkMemoryHit(b *testing.B) {
	ctx := context.Background()
	c := cache.New[int, user](cache.NewMemory[int, user](1000), cache.WithTTL(time.Hour))
	load := func(ctx context.Context, id int) (user, error) { return user{ID: id}, nil }
	for i := range 100 {
		c.Get(ctx, i, load)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Get(ctx, i%100, load)
			i++
		}
	})
}
