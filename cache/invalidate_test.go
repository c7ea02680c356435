package cache_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/cache"
	"github.com/svckit/svckit/natsserver"
)

// kvReplicas returns n KV backends on one bucket of one server, each on its own
// connection, as the replicas of a service see it.
func kvReplicas(t *testing.T, n int) []cache.Backend[int, user] {
	t.Helper()
	ctx := context.Background()
	s, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	var out []cache.Backend[int, user]
	for range n {
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
		out = append(out, cache.NewKV[int, user](kv))
	}
	return out
}

// source is a source of truth with one row whose name the test changes; its first read
// can be held after it read the row, as a slow query that returns what it saw.
type source struct {
	mu     sync.Mutex
	name   string
	reads  int
	read   chan struct{} // closed when the held read has read the row
	resume chan struct{} // the held read returns when this is closed
}

func (s *source) load(ctx context.Context, id int) (user, error) {
	s.mu.Lock()
	s.reads++
	first, name := s.reads == 1, s.name
	s.mu.Unlock()
	if first {
		close(s.read)
		<-s.resume
	}
	return user{ID: id, Name: name}, nil
}

func (s *source) write(name string) {
	s.mu.Lock()
	s.name = name
	s.mu.Unlock()
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// TestInvalidationWinsOverLoad: a load that read the source before a write and the
// Delete or Set that follows it must not cache what it read, and a Get after the
// invalidation must not share that load. The invalidation comes from the same Cache or,
// on a shared backend, from another replica's Cache.
func TestInvalidationWinsOverLoad(t *testing.T) {
	type setup struct {
		name string
		open func(t *testing.T) (reader, writer cache.Backend[int, user])
	}
	setups := []setup{
		{"Memory", func(*testing.T) (cache.Backend[int, user], cache.Backend[int, user]) {
			m := cache.NewMemory[int, user](100)
			return m, nil
		}},
		{"KV", func(t *testing.T) (cache.Backend[int, user], cache.Backend[int, user]) {
			return kvReplicas(t, 1)[0], nil
		}},
		{"KVReplicas", func(t *testing.T) (cache.Backend[int, user], cache.Backend[int, user]) {
			b := kvReplicas(t, 2)
			return b[0], b[1]
		}},
	}
	invalidations := []struct {
		name string
		do   func(ctx context.Context, c *cache.Cache[int, user]) error
		// loads is the number of source reads after the test: the held one, and one more
		// when the invalidation leaves nothing cached.
		loads int
	}{
		{"Delete", func(ctx context.Context, c *cache.Cache[int, user]) error { return c.Delete(ctx, 1) }, 2},
		{"Set", func(ctx context.Context, c *cache.Cache[int, user]) error {
			return c.Set(ctx, 1, user{ID: 1, Name: "new"})
		}, 1},
	}
	for _, su := range setups {
		for _, inv := range invalidations {
			t.Run(su.name+"/"+inv.name, func(t *testing.T) {
				ctx := context.Background()
				rb, wb := su.open(t)
				c := cache.New(rb, cache.WithTTL(time.Hour))
				writer := c
				if wb != nil {
					writer = cache.New(wb, cache.WithTTL(time.Hour))
				}
				src := &source{name: "old", read: make(chan struct{}), resume: make(chan struct{})}
				first := make(chan user, 1)
				go func() { u, _ := c.Get(ctx, 1, src.load); first <- u }()
				<-src.read // the load has read "old"
				src.write("new")
				if err := inv.do(ctx, writer); err != nil {
					t.Fatal(err)
				}
				// A Get after the invalidation neither joins the held load nor waits for it.
				gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				u, err := c.Get(gctx, 1, src.load)
				cancel()
				if err != nil || u.Name != "new" {
					t.Errorf("Get after %s: %+v %v, want the new name", inv.name, u, err)
				}
				close(src.resume)
				if u := <-first; u.Name != "old" { // the held load's caller gets what it read
					t.Errorf("first Get: %+v", u)
				}
				// The held load finished; it must not have cached "old".
				for _, cc := range []*cache.Cache[int, user]{c, writer} {
					if u, err := cc.Get(ctx, 1, src.load); err != nil || u.Name != "new" {
						t.Errorf("Get after the held load ended: %+v %v, want the new name", u, err)
					}
				}
				if n := src.count(); n != inv.loads {
					t.Errorf("%d source reads, want %d", n, inv.loads)
				}
			})
		}
	}
}

// TestInvalidationUnderLoad runs writers (change the source, then Delete or Set the key)
// beside readers on a few keys: a Get that begins after an invalidation returned never
// sees an older value, and once the writers stop, every key reads its last value.
func TestInvalidationUnderLoad(t *testing.T) {
	setups := []struct {
		name string
		open func(t *testing.T) []cache.Backend[int, user]
	}{
		{"Memory", func(*testing.T) []cache.Backend[int, user] {
			return []cache.Backend[int, user]{cache.NewMemory[int, user](100)}
		}},
		{"KVReplicas", func(t *testing.T) []cache.Backend[int, user] { return kvReplicas(t, 2) }},
	}
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			ctx := context.Background()
			var caches []*cache.Cache[int, user]
			for _, b := range su.open(t) {
				caches = append(caches, cache.New(b, cache.WithTTL(time.Hour)))
			}
			const keys = 3
			var versions, floors [keys]atomic.Int64 // source value; highest invalidated one
			load := func(ctx context.Context, id int) (user, error) {
				v := versions[id].Load()
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // a slow query
				return user{ID: id, Name: strconv.FormatInt(v, 10)}, nil
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := range 2 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id, c := rand.IntN(keys), caches[(w+i)%len(caches)]
						// One writer per key at a time keeps "last write wins" meaningful.
						if id%2 != w {
							continue
						}
						v := versions[id].Add(1)
						var err error
						if i%2 == 0 {
							err = c.Delete(ctx, id)
						} else {
							err = c.Set(ctx, id, user{ID: id, Name: strconv.FormatInt(v, 10)})
						}
						if err != nil {
							t.Error(err)
							return
						}
						floors[id].Store(v)
						time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
					}
				})
			}
			var stale atomic.Int32
			for r := range 4 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id := rand.IntN(keys)
						floor := floors[id].Load()
						u, err := caches[(r+i)%len(caches)].Get(ctx, id, load)
						if err != nil {
							t.Error(err)
							return
						}
						if v, _ := strconv.ParseInt(u.Name, 10, 64); v < floor {
							stale.Add(1)
						}
					}
				})
			}
			time.Sleep(time.Second)
			close(stop)
			wg.Wait()
			if n := stale.Load(); n > 0 {
				t.Errorf("%d Gets returned a value older than an invalidation that had returned", n)
			}
			for id := range keys {
				for i, c := range caches {
					u, err := c.Get(ctx, id, load)
					if want := strconv.FormatInt(versions[id].Load(), 10); err != nil || u.Name != want {
						t.Errorf("key %d, cache %d: %+v %v, want %s", id, i, u, err, want)
					}
				}
			}
		})
	}
}

// pausingBackend is a Memory backend whose Set of a value named "old" pauses before the
// write until release is closed, then closes written and pauses until settled is closed.
type pausingBackend struct {
	*cache.Memory[int, user]
	entered, release, written, settled chan struct{}
}

func (b *pausingBackend) Set(ctx context.Context, key int, e cache.Entry[user]) error {
	if e.Value.Name != "old" {
		return b.Memory.Set(ctx, key, e)
	}
	close(b.entered)
	<-b.release
	err := b.Memory.Set(ctx, key, e)
	close(b.written)
	<-b.settled
	return err
}

// TestDeleteWaitsForALoadsWrite pins the interleaving that TestInvalidationUnderLoad only
// hits now and then on a backend that is not versioned: a load has checked that no Set or
// Delete came since it began and is about to write its result when Delete runs. Delete
// must not return before that write is settled, or a Get after it finds the older value.
func TestDeleteWaitsForALoadsWrite(t *testing.T) {
	ctx := context.Background()
	b := &pausingBackend{Memory: cache.NewMemory[int, user](10),
		entered: make(chan struct{}), release: make(chan struct{}), written: make(chan struct{}), settled: make(chan struct{})}
	c := cache.New[int, user](b, cache.WithTTL(time.Hour))
	var source atomic.Value
	source.Store("old")
	load := func(context.Context, int) (user, error) { return user{ID: 1, Name: source.Load().(string)}, nil }

	got := make(chan user, 1)
	go func() {
		u, err := c.Get(ctx, 1, load)
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	<-b.entered // the load is writing "old" to the backend

	source.Store("new")
	deleted := make(chan error, 1)
	go func() { deleted <- c.Delete(ctx, 1) }()
	select {
	case err := <-deleted:
		// Delete returned before the load's write: once that write lands, a Get must
		// still not see it.
		if err != nil {
			t.Fatal(err)
		}
		close(b.release)
		<-b.written
		u, err := c.Get(ctx, 1, load)
		close(b.settled)
		if err != nil || u.Name != "new" {
			t.Fatalf("Get after Delete returned: %+v %v, want the new value", u, err)
		}
	case <-time.After(100 * time.Millisecond):
		// Delete waits for the load's write, as it must; let the write finish.
		close(b.release)
		close(b.settled)
		if err := <-deleted; err != nil {
			t.Fatal(err)
		}
	}
	<-got
	if u, err := c.Get(ctx, 1, load); err != nil || u.Name != "new" {
		t.Fatalf("Get after Delete: %+v %v, want the new value", u, err)
	}
}
