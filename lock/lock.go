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
// every TTL/3. A holder gives its lease up (its context is canceled with ErrLost) once
// TTL minus the margin (see WithMargin) has passed since the start of its last successful
// acquisition or renewal request, before the backend can hand the lock to another holder.
func WithTTL(d time.Duration) Option { return func(l *Locker) { l.ttl = d } }

// WithMargin sets how long before the end of its TTL a holder that could not renew gives
// its lease up; default TTL/10. It covers the difference between the holders' clocks and
// the time the holder's work takes to notice its canceled context. Values outside
// (0, TTL/2] are replaced by the default.
func WithMargin(d time.Duration) Option { return func(l *Locker) { l.margin = d } }

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
	margin time.Duration
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
	if l.margin <= 0 || l.margin > l.ttl/2 {
		l.margin = l.ttl / 10
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
	start := time.Now() // the backend's TTL runs from some moment after this
	g, ok, err := l.b.Acquire(ctx, name, l.holder, l.ttl)
	if err != nil || !ok {
		return nil, false, err
	}
	return l.start(g, start.Add(l.ttl-l.margin)), true, nil
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

// start returns a lease for g that is valid until valid unless renewed, and starts
// renewing it.
func (l *Locker) start(g Grant, valid time.Time) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	lease := &Lease{l: l, name: g.Name, token: g.Token, g: g, ctx: ctx, cancel: cancel,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	// The lease gives up on its own at valid, even while a renewal request hangs.
	lease.expire = time.AfterFunc(time.Until(valid), func() { cancel(ErrLost) })
	l.mu.Lock()
	l.leases[lease] = struct{}{}
	l.mu.Unlock()
	go lease.renew(valid)
	return lease
}

func (l *Locker) forget(le *Lease) {
	l.mu.Lock()
	delete(l.leases, le)
	l.mu.Unlock()
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
	name    string // g.Name, immutable
	token   uint64 // g.Token, immutable
	ctx     context.Context
	cancel  context.CancelCauseFunc
	expire  *time.Timer // cancels ctx with ErrLost when the lease's validity ends
	once    sync.Once
	stop    chan struct{}
	stopped chan struct{}

	mu sync.Mutex
	g  Grant // renewals change its Version
}

// Name returns the lock's name.
func (le *Lease) Name() string { return le.name }

// Token returns the fencing token of this acquisition. Pass it with every write made
// under the lock, for the resource to check with a Fence.
func (le *Lease) Token() uint64 { return le.token }

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
		le.l.forget(le)
		lost := !le.expire.Stop() || le.ctx.Err() != nil
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

// renew renews the lease every TTL/3 until it is released or lost. The lease is valid
// until valid: TTL minus the margin after the start of the last successful request
// (acquisition or renewal), which is before the backend's TTL of that request ends. The
// expire timer gives the lease up at that moment even while a renewal hangs; a renewal
// that succeeds moves it.
func (le *Lease) renew(valid time.Time) {
	defer close(le.stopped)
	ttl, margin := le.l.ttl, le.l.margin
	t := time.NewTicker(max(ttl/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-le.stop:
			return
		case <-le.ctx.Done(): // the validity ended without a renewal
			le.l.forget(le)
			return
		case <-t.C:
		}
		le.mu.Lock()
		g := le.g
		le.mu.Unlock()
		start := time.Now()
		deadline := start.Add(ttl / 3)
		if valid.Before(deadline) {
			deadline = valid
		}
		ctx, cancel := context.WithDeadline(le.ctx, deadline)
		ng, err := le.l.b.Renew(ctx, g, ttl)
		cancel()
		switch {
		case err == nil:
			if !le.expire.Stop() {
				// Given up meanwhile: the lease's context is canceled already.
				le.l.forget(le)
				return
			}
			le.mu.Lock()
			le.g = ng
			le.mu.Unlock()
			valid = start.Add(ttl - margin)
			le.expire.Reset(time.Until(valid))
		case errors.Is(err, ErrLost):
			le.expire.Stop()
			le.l.forget(le)
			le.cancel(ErrLost)
			return
		}
		// Other errors: try again at the next tick, until the lease's validity ends.
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
