package resilience

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is a context with a deadline whose timer is created only when somebody
// waits on Done. context.WithTimeout arms a runtime timer and registers with the parent on
// every call; most requests finish long before their deadline and never select on Done
// (a JSON handler that does no I/O), so the timer is pure overhead for them. Err reports
// DeadlineExceeded once the deadline has passed whether or not Done was called, and
// Deadline reports the deadline so it propagates downstream (gRPC timeouts, SQL drivers).
//
// The first Done call arms it: it makes a context.WithDeadline of the parent, whose Done,
// Err and values it reports from then on. Its values then include that context's own
// cancellation, so a context.WithCancel (or WithTimeout, or AfterFunc) derived from it
// registers as the armed context's child, as it would under a context.WithTimeout.
// Without that, the context package would start a goroutine per derived context to watch
// a parent it does not know — one per gRPC client call, as grpc-go derives a cancelable
// context from the caller's for every call.
type deadlineCtx struct {
	context.Context // the parent
	deadline        time.Time

	armed atomic.Pointer[armedDeadline] // set by the first Done call while not yet done

	mu  sync.Mutex
	err error // before arming: the parent's error, DeadlineExceeded, or Canceled at release
}

// armedDeadline is the context.WithDeadline of an armed deadlineCtx.
type armedDeadline struct {
	ctx    context.Context
	cancel context.CancelFunc
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// withLazyDeadline returns a deadlineCtx and its release func, as context.WithDeadline.
func withLazyDeadline(parent context.Context, d time.Time) (*deadlineCtx, func()) {
	c := newLazyDeadline(parent, d)
	return c, c.release
}

// newLazyDeadline returns a deadlineCtx; the caller must defer its release method (called
// directly, which costs no allocation, unlike the func value of withLazyDeadline).
func newLazyDeadline(parent context.Context, d time.Time) *deadlineCtx {
	return &deadlineCtx{Context: parent, deadline: d}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Done() <-chan struct{} {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Done()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a.ctx.Done()
	}
	if c.err == nil {
		c.err = c.expiredLocked()
	}
	if c.err != nil {
		return closedChan
	}
	ctx, cancel := context.WithDeadline(c.Context, c.deadline)
	c.armed.Store(&armedDeadline{ctx: ctx, cancel: cancel})
	return ctx.Done()
}

// expiredLocked returns the parent's error or DeadlineExceeded once the deadline passed.
func (c *deadlineCtx) expiredLocked() error {
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// Err follows the context contract: nil until Done is closed. Before anyone has called
// Done there is no channel, so Err decides from the parent and the clock.
func (c *deadlineCtx) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.armed.Load(); a != nil {
		return a.ctx.Err()
	}
	if c.err == nil {
		c.err = c.expiredLocked()
	}
	return c.err
}

// Value returns the parent's values; once armed, those of the armed context, which are the
// parent's and the armed context's own cancellation (see deadlineCtx).
func (c *deadlineCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.Context.Value(key)
}

// release ends the context when the call returns, as the cancel func of
// context.WithTimeout does: the timer stops and waiters on Done and derived contexts are
// released with Canceled.
func (c *deadlineCtx) release() {
	c.mu.Lock()
	a := c.armed.Load()
	if a == nil && c.err == nil {
		c.err = context.Canceled
	}
	c.mu.Unlock()
	if a != nil {
		a.cancel()
	}
}

func (c *deadlineCtx) String() string { return "resilience.deadlineCtx" }
