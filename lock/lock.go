// Package lock provides lease-based distributed locks and leader election with fencing
// tokens.
//
// A [Locker] acquires named locks from a [Backend] — a row in the service's SQL store
// ([NewSQL]) or a key in a NATS KV bucket ([NewKV]) — for a time to live, and renews them
// in the background until they are released. Each acquisition gets a fencing token that
// is greater than every token handed out for that name before. A holder passes its token
// along with every write it makes under the lock, and the resource rejects writes with a
// token lower than the highest it has seen ([Fence]): a holder that paused past its lease
// (a GC pause, a network partition) and did not notice cannot overwrite the work of the
// holder that came after it.
//
// A [Lease] has a context that is canceled when the lease is lost or released; work done
// under the lock should use it. [Locker.Close] releases every lease on shutdown, so other
// replicas need not wait for the leases to expire. [Locker.Lead] runs a function while
// this replica is the leader.
package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/svckit/svckit/svcerr"
)

// Grant is a lock as a Backend handed it out.
type Grant struct {
	// Name is the lock's name.
	Name string
	// Holder identifies the Locker that holds it.
	Holder string
	// Token is the fencing token: greater than any token of an earlier acquisition of
	// the same name. It stays the same across renewals.
	Token uint64
	// Version is the backend's version of the lock record, for compare-and-set; it
	// changes on renewal.
	Version uint64
}

// Backend stores locks. Implementations must make Acquire and Renew atomic
// compare-and-set operations.
type Backend interface {
	// Acquire takes the lock name for holder for ttl if nobody holds it or its holder's
	// time ran out, and reports whether it did.
	Acquire(ctx context.Context, name, holder string, ttl time.Duration) (Grant, bool, error)
	// Renew extends g by ttl from now. It fails with ErrLost when g is no longer held.
	Renew(ctx context.Context, g Grant, ttl time.Duration) (Grant, error)
	// Release gives g up, if it is still held.
	Release(ctx context.Context, g Grant) error
}

var (
	// ErrLost says a lease ran out or was taken over before it could be renewed.
	ErrLost = errors.New("lock: lease lost")
	// ErrReleased is the cause of a lease's context after Release.
	ErrReleased = errors.New("lock: lease released")
	// ErrStaleToken is returned by Fence.Check for a token lower than one seen before. It
	// is a svcerr FailedPrecondition error.
	ErrStaleToken = svcerr.New(svcerr.FailedPrecondition, "lock: stale fencing token")
)

// Option configures a Locker.
type Option func(*Locker)

// WithTTL sets how long a lease lasts without renewal; default 15s. Leases are renewed
// every TTL/3.
func WithTTL(d time.Duration) Option { return func(l *Locker) { l.ttl = d } }

// WithHolder sets the holder id recorded with the locks; default a random id. Use a
// stable, unique id (host and process) to see who holds a lock.
func WithHolder(id string) Option { return func(l *Locker) { l.holder = id } }

// WithRetryInterval sets how often Acquire tries again while the lock is held by
// another; default TTL/10, at least 10ms.
func WithRetryInterval(d time.Duration) Option { return func(l *Locker) { l.retry = d } }

// Locker acquires and renews locks in a Backend for one holder.
type Locker struct {
	b      Backend
	holder string
	ttl    time.Duration
	retry  time.Duration

	mu     sync.Mutex
	leases map[*Lease]struct{}
}

// New returns a Locker that keeps its locks in b.
func New(b Backend, opts ...Option) *Locker {
	l := &Locker{b: b, ttl: 15 * time.Second, leases: map[*Lease]struct{}{}}
	for _, fn := range opts {
		fn(l)
	}
	if l.holder == "" {
		var r [8]byte
		_, _ = rand.Read(r[:])
		l.holder = hex.EncodeToString(r[:])
	}
	if l.ttl <= 0 {
		l.ttl = 15 * time.Second
	}
	if l.retry <= 0 {
		l.retry = max(l.ttl/10, 10*time.Millisecond)
	}
	return l
}

// Holder returns the locker's holder id.
func (l *Locker) Holder() string { return l.holder }

// TryAcquire takes the lock name if it is free and reports whether it did.
func (l *Locker) TryAcquire(ctx context.Context, name string) (*Lease, bool, error) {
	g, ok, err := l.b.Acquire(ctx, name, l.holder, l.ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	return l.start(g), true, nil
}

// Acquire waits until it takes the lock name, or ctx ends.
func (l *Locker) Acquire(ctx context.Context, name string) (*Lease, error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock: acquire %s: %w", name, ctx.Err())
		case <-t.C:
		}
		lease, ok, err := l.TryAcquire(ctx, name)
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("lock: acquire %s: %w", name, err)
		}
		if ok {
			return lease, nil
		}
		t.Reset(l.retry)
	}
}

func (l *Locker) start(g Grant) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	lease := &Lease{l: l, g: g, ctx: ctx, cancel: cancel, stop: make(chan struct{}), stopped: make(chan struct{})}
	l.mu.Lock()
	l.leases[lease] = struct{}{}
	l.mu.Unlock()
	go lease.renew()
	return lease
}

// Close releases every lease the locker holds.
func (l *Locker) Close(ctx context.Context) error {
	l.mu.Lock()
	leases := make([]*Lease, 0, len(l.leases))
	for le := range l.leases {
		leases = append(leases, le)
	}
	l.mu.Unlock()
	var errs []error
	for _, le := range leases {
		errs = append(errs, le.Release(ctx))
	}
	return errors.Join(errs...)
}

// Lead runs fn whenever this locker holds the lock name, until ctx ends: it acquires the
// lock, runs fn with a context that is canceled when the lease is lost or ctx ends,
// releases the lock when fn returns, and campaigns again. It returns nil when ctx ends,
// or the first error fn returns while the lease was held.
func (l *Locker) Lead(ctx context.Context, name string, fn func(ctx context.Context, lease *Lease) error) error {
	for {
		lease, err := l.Acquire(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(lease.Context(), cancel)
		err = fn(fctx, lease)
		stop()
		cancel()
		lost := lease.Context().Err() != nil
		_ = lease.Release(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && !lost {
			return err
		}
	}
}

// Lease is a held lock.
type Lease struct {
	l       *Locker
	ctx     context.Context
	cancel  context.CancelCauseFunc
	once    sync.Once
	stop    chan struct{}
	stopped chan struct{}

	mu sync.Mutex
	g  Grant
}

// Name returns the lock's name.
func (le *Lease) Name() string { return le.g.Name }

// Token returns the fencing token of this acquisition. Pass it with every write made
// under the lock, for the resource to check with a Fence.
func (le *Lease) Token() uint64 { return le.g.Token }

// Context returns a context that is canceled when the lease is lost or released;
// context.Cause tells which (ErrLost or ErrReleased).
func (le *Lease) Context() context.Context { return le.ctx }

// Done is Context().Done().
func (le *Lease) Done() <-chan struct{} { return le.ctx.Done() }

// Release stops renewing the lease and gives the lock up. It is safe to call more than
// once.
func (le *Lease) Release(ctx context.Context) error {
	var err error
	le.once.Do(func() {
		close(le.stop)
		<-le.stopped
		le.l.mu.Lock()
		delete(le.l.leases, le)
		le.l.mu.Unlock()
		lost := le.ctx.Err() != nil
		le.cancel(ErrReleased)
		if !lost {
			le.mu.Lock()
			g := le.g
			le.mu.Unlock()
			if e := le.l.b.Release(ctx, g); e != nil {
				err = fmt.Errorf("lock: release %s: %w", g.Name, e)
			}
		}
	})
	return err
}

// renew renews the lease every TTL/3 until it is released or lost. A lease whose
// renewals keep failing is given up once its TTL has passed since the last success.
func (le *Lease) renew() {
	defer close(le.stopped)
	ttl := le.l.ttl
	t := time.NewTicker(max(ttl/3, time.Millisecond))
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-le.stop:
			return
		case <-t.C:
		}
		le.mu.Lock()
		g := le.g
		le.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		start := time.Now()
		ng, err := le.l.b.Renew(ctx, g, ttl)
		cancel()
		switch {
		case err == nil:
			le.mu.Lock()
			le.g = ng
			le.mu.Unlock()
			renewed = start
		case errors.Is(err, ErrLost) || time.Since(renewed) >= ttl:
			le.l.mu.Lock()
			delete(le.l.leases, le)
			le.l.mu.Unlock()
			le.cancel(ErrLost)
			return
		}
	}
}

// Fence guards a resource against writes from stale lock holders: it remembers the
// highest fencing token seen per resource and rejects lower ones. The zero Fence is ready
// to use. A Fence protects one process's resource; a store shared by several processes
// keeps the highest token in the store, and checks it in the same transaction as the
// write (UPDATE … SET token = ? WHERE id = ? AND token <= ?).
type Fence struct {
	mu      sync.Mutex
	highest map[string]uint64
}

// Check admits a write to resource under token: it fails with ErrStaleToken if a higher
// token was admitted before, and otherwise records token.
func (f *Fence) Check(resource string, token uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.highest == nil {
		f.highest = map[string]uint64{}
	}
	if h := f.highest[resource]; token < h {
		return fmt.Errorf("%w: %d < %d for %s", ErrStaleToken, token, h, resource)
	}
	f.highest[resource] = token
	return nil
}

// Highest returns the highest token admitted for resource.
func (f *Fence) Highest(resource string) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.highest[resource]
}
