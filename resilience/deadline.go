package resilience

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is a context with a deadline whose timer is created only when somebody
// waits on Done. context.WithTimeout arms a runtime timer and registers with the parent on
// every call; most requests finish long before their deadline and never select on Done
// (a JSON handler that does no I/O), so the timer is pure overhead for them. Err reports
// DeadlineExceeded once the deadline has passed whether or not Done was called, and
// Deadline reports the deadline so it propagates downstream (gRPC timeouts, SQL drivers).
type deadlineCtx struct {
	context.Context // the parent
	deadline        time.Time

	mu         sync.Mutex
	done       chan struct{} // created by the first Done call
	err        error
	timer      *time.Timer
	stopParent func() bool
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	if c.err == nil {
		c.err = c.expiredLocked()
	}
	if c.err != nil {
		c.done = closedChan
		return c.done
	}
	c.done = make(chan struct{})
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	c.stopParent = context.AfterFunc(c.Context, func() { c.cancel(c.Context.Err()) })
	return c.done
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && c.done == nil {
		c.err = c.expiredLocked()
	}
	return c.err
}

// cancel records err (the first one wins) and closes Done if it exists.
func (c *deadlineCtx) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil && c.done != closedChan {
		close(c.done)
	}
}

// release ends the context when the call returns, as the cancel func of
// context.WithTimeout does: timers stop and a waiter on Done is released with Canceled.
func (c *deadlineCtx) release() {
	c.mu.Lock()
	timer, stop := c.timer, c.stopParent
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if stop != nil {
		stop()
	}
	c.cancel(context.Canceled)
}

func (c *deadlineCtx) String() string { return "resilience.deadlineCtx" }
