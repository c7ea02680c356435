// Package cache is a cache-aside cache: Get returns a cached value or loads it with the
// caller's loader and caches it for a TTL.
//
// Entries live for a TTL with random jitter (±10% by default), so entries written
// together do not expire together. Concurrent Gets of a missing key share one load
// (single flight), so an expired hot key does not send a stampede to the database. A
// loader's NotFound error (svcerr.NotFound by default) is cached too, for a shorter TTL,
// so lookups of keys that do not exist do not each reach the database.
//
// Invalidation wins over loads in flight: a load that read the source before a [Cache.Set]
// or [Cache.Delete] of its key does not cache its result afterwards, and a Get after the
// invalidation starts a load of its own instead of sharing that one. Within a process
// the Cache tracks its loads; across the replicas that share a [KV] bucket, the backend's
// versions ([VersionedBackend]) make a load's write conditional on the key not having
// changed since the load began.
//
// Backends: [Memory], a bounded LRU in the process, and [KV], a NATS JetStream key-value
// bucket shared by the replicas of a service.
package cache

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svckit/svckit/svcerr"
)

// Entry is a cached value, or a cached miss.
type Entry[V any] struct {
	Value    V
	NotFound bool      // the loader reported that the key does not exist
	Expires  time.Time // the entry is not used after this time
}

// Backend stores entries. Get reports false for a missing or expired entry.
type Backend[K comparable, V any] interface {
	Get(ctx context.Context, key K) (Entry[V], bool, error)
	Set(ctx context.Context, key K, e Entry[V]) error
	Delete(ctx context.Context, key K) error
}

// VersionedBackend is a Backend that several Caches share (the replicas of a service) and
// that versions each key, so that a Set or Delete through any of them wins over a load
// in flight in another: the Cache reads the key's version before it loads, and writes
// the loaded entry only if the version is unchanged. [KV] implements it.
type VersionedBackend[K comparable, V any] interface {
	Backend[K, V]
	// GetVersion is Get that also returns the version of the key's record, missing or
	// expired ones included. Every Set and Delete of the key makes its version greater.
	GetVersion(ctx context.Context, key K) (Entry[V], bool, uint64, error)
	// SetIfVersion stores e for key if the key's version is still ver, and reports
	// whether it did.
	SetIfVersion(ctx context.Context, key K, e Entry[V], ver uint64) (bool, error)
}

// ErrNotFound is returned by Get for a key whose miss is cached. It is a svcerr NotFound
// error.
var ErrNotFound = svcerr.New(svcerr.NotFound, "not found")

// Option configures a Cache.
type Option func(*options)

type options struct {
	ttl, negTTL, loadTimeout time.Duration
	jitter                   float64
	notFound                 func(error) bool
	onError                  func(error)
}

// WithTTL sets how long loaded values are cached; default 1 minute.
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithJitter sets the random spread of TTLs as a fraction: 0.1 (the default) makes each
// TTL between 90% and 110% of the configured one.
func WithJitter(f float64) Option { return func(o *options) { o.jitter = min(max(f, 0), 1) } }

// WithNegativeTTL sets how long a NotFound result is cached; default 5s, 0 turns
// negative caching off.
func WithNegativeTTL(d time.Duration) Option { return func(o *options) { o.negTTL = d } }

// WithNotFound sets which loader errors mean "the key does not exist"; default errors of
// kind svcerr.NotFound.
func WithNotFound(fn func(error) bool) Option { return func(o *options) { o.notFound = fn } }

// WithLoadTimeout bounds each load; default none. A load runs on after the caller that
// started it gives up, for the other callers waiting for it and for the cache.
func WithLoadTimeout(d time.Duration) Option { return func(o *options) { o.loadTimeout = d } }

// WithErrorHandler is told of backend errors; by default they are ignored, and a backend
// that fails makes the cache load every time.
func WithErrorHandler(fn func(error)) Option { return func(o *options) { o.onError = fn } }

// Stats counts what a Cache did.
type Stats struct {
	Hits         uint64 // values served from the backend
	NegativeHits uint64 // cached misses served
	Loads        uint64 // loader calls
	Shared       uint64 // Gets that waited for another Get's load
	Discarded    uint64 // loads not cached because the key was set or deleted meanwhile
}

// Cache is a cache-aside cache of values of type V by keys of type K.
type Cache[K comparable, V any] struct {
	b  Backend[K, V]
	vb VersionedBackend[K, V] // b, when it is one
	o  options

	mu      sync.Mutex
	flights map[K]*flight[V]
	// writeMu orders, on a backend that is not a VersionedBackend, a load's check that it
	// is not stale and its write with the invalidations of Set and Delete: without it, a
	// load could write its result just after an invalidation reached the backend, and a
	// Get after Set or Delete had returned could see that older value.
	writeMu sync.Mutex

	hits, negHits, loads, shared, discarded atomic.Uint64
}

// flight is one load of a key, shared by the Gets that wait for it.
type flight[V any] struct {
	done chan struct{}
	v    V
	err  error
	// ver is the backend version of the key when the load began (VersionedBackend); known
	// says whether it was read.
	ver   uint64
	known bool
	// stale (guarded by Cache.mu) is set when a Set or Delete of the key came after the
	// load began: its result is not cached, and new Gets do not join it.
	stale bool
}

// New returns a Cache on b.
func New[K comparable, V any](b Backend[K, V], opts ...Option) *Cache[K, V] {
	o := options{ttl: time.Minute, negTTL: 5 * time.Second, jitter: 0.1}
	for _, fn := range opts {
		fn(&o)
	}
	if o.notFound == nil {
		o.notFound = func(err error) bool { return svcerr.KindOf(err) == svcerr.NotFound }
	}
	if o.onError == nil {
		o.onError = func(error) {}
	}
	c := &Cache[K, V]{b: b, o: o, flights: map[K]*flight[V]{}}
	c.vb, _ = b.(VersionedBackend[K, V])
	return c
}

// lookup reads key from the backend, with its version when the backend has versions.
func (c *Cache[K, V]) lookup(ctx context.Context, key K) (e Entry[V], ok bool, ver uint64, known bool) {
	var err error
	if c.vb != nil {
		e, ok, ver, err = c.vb.GetVersion(ctx, key)
		known = err == nil
	} else {
		e, ok, err = c.b.Get(ctx, key)
	}
	if err != nil {
		c.o.onError(err)
		return Entry[V]{}, false, 0, false
	}
	return e, ok, ver, known
}

// Get returns the cached value of key, or loads it with load, caches it and returns it.
// Concurrent Gets of the same key share one load. A load's NotFound error is cached for
// the negative TTL, and Get returns ErrNotFound for it until then; other errors are
// returned and not cached.
func (c *Cache[K, V]) Get(ctx context.Context, key K, load func(ctx context.Context, key K) (V, error)) (V, error) {
	e, ok, ver, known := c.lookup(ctx, key)
	if ok {
		if e.NotFound {
			c.negHits.Add(1)
			var zero V
			return zero, ErrNotFound
		}
		c.hits.Add(1)
		return e.Value, nil
	}
	c.mu.Lock()
	f, ok := c.flights[key]
	if ok && known && f.known && ver > f.ver {
		// The key was set or deleted (by another replica) after f began: f's result is
		// stale, for this Get and for the cache.
		f.stale = true
		ok = false
	}
	if !ok {
		f = &flight[V]{done: make(chan struct{}), ver: ver, known: known}
		c.flights[key] = f
		go c.load(context.WithoutCancel(ctx), key, f, load)
	} else {
		c.shared.Add(1)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.v, f.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

func (c *Cache[K, V]) load(ctx context.Context, key K, f *flight[V], load func(ctx context.Context, key K) (V, error)) {
	defer func() {
		c.mu.Lock()
		if c.flights[key] == f {
			delete(c.flights, key)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	if c.o.loadTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.o.loadTimeout)
		defer cancel()
	}
	c.loads.Add(1)
	f.v, f.err = safeLoad(ctx, key, load)
	switch {
	case f.err == nil:
		c.store(ctx, key, f, Entry[V]{Value: f.v}, c.o.ttl)
	case c.o.negTTL > 0 && c.o.notFound(f.err):
		c.store(ctx, key, f, Entry[V]{NotFound: true}, c.o.negTTL)
	}
}

func (c *Cache[K, V]) isStale(f *flight[V]) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f.stale
}

// store caches the result of the load f unless the key was set or deleted since f began.
func (c *Cache[K, V]) store(ctx context.Context, key K, f *flight[V], e Entry[V], ttl time.Duration) {
	e.Expires = time.Now().Add(c.jittered(ttl))
	if c.vb == nil {
		// The check and the write under writeMu, which invalidate holds too: a Set or
		// Delete either marked f stale before, or its backend write comes after this one.
		// The lock is per Cache, so a slow backend write delays other keys' Sets and
		// Deletes (never Gets); a remote backend should be a VersionedBackend.
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		if c.isStale(f) {
			c.discarded.Add(1)
			return
		}
		if err := c.b.Set(ctx, key, e); err != nil {
			c.o.onError(err)
		}
		return
	}
	if c.isStale(f) {
		c.discarded.Add(1)
		return
	}
	// The write is conditional on the version the load began from; a Set or Delete
	// through any Cache on the backend changes it. Unknown (the backend failed): no write.
	if !f.known {
		return
	}
	ok, err := c.vb.SetIfVersion(ctx, key, e, f.ver)
	if err != nil {
		c.o.onError(err)
	} else if !ok {
		c.discarded.Add(1)
	}
}

func safeLoad[K comparable, V any](ctx context.Context, key K, load func(ctx context.Context, key K) (V, error)) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = svcerr.Errorf(svcerr.Internal, "cache: loader panicked: %v", r)
		}
	}()
	return load(ctx, key)
}

func (c *Cache[K, V]) jittered(ttl time.Duration) time.Duration {
	if c.o.jitter == 0 {
		return ttl
	}
	return time.Duration(float64(ttl) * (1 + c.o.jitter*(2*rand.Float64()-1)))
}

// Set caches v for key for the TTL, as after a write to the source of truth. A load of
// key in flight does not cache its result afterwards.
func (c *Cache[K, V]) Set(ctx context.Context, key K, v V) error {
	c.invalidate(key)
	return c.b.Set(ctx, key, Entry[V]{Value: v, Expires: time.Now().Add(c.jittered(c.o.ttl))})
}

// Delete removes key from the cache, so that the next Get loads it, as after a write to
// the source of truth. A load of key in flight does not cache its result afterwards, and
// Gets after Delete do not share it.
func (c *Cache[K, V]) Delete(ctx context.Context, key K) error {
	c.invalidate(key)
	return c.b.Delete(ctx, key)
}

// invalidate marks the load of key in flight, if any, stale and lets new Gets start
// their own. It comes before the backend write, so the load's own write either sees the
// mark or reaches the backend first (and is then overwritten, or undone by store).
func (c *Cache[K, V]) invalidate(key K) {
	if c.vb == nil {
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
	}
	c.mu.Lock()
	if f, ok := c.flights[key]; ok {
		f.stale = true
		delete(c.flights, key)
	}
	c.mu.Unlock()
}

// Stats returns the cache's counters.
func (c *Cache[K, V]) Stats() Stats {
	return Stats{Hits: c.hits.Load(), NegativeHits: c.negHits.Load(), Loads: c.loads.Load(),
		Shared: c.shared.Load(), Discarded: c.discarded.Load()}
}

// IsNotFound reports whether err is ErrNotFound or another svcerr NotFound error.
func IsNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || svcerr.KindOf(err) == svcerr.NotFound
}
