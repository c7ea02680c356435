package resilience

import (
	"context"
	"sync"
	"time"
)

// callDeadlines bounds the calls of one client endpoint that [Timeout] wraps, all with the
// same duration, with one runtime timer for all of them instead of a
// context.WithTimeout (and its timer) per call. As every call's deadline is its start plus
// the same duration, taken under the lock, the calls in flight are in deadline order: a
// list, whose head is the next to expire. The timer is armed for the head's deadline; when
// it fires it expires the calls whose deadline has passed (on time, as a timer per call
// would) and is armed again for the new head, if there is one. A call that returns leaves
// the list, and the timer stays armed for the deadline it had: with calls shorter than the
// duration it fires about once per duration while calls keep coming, and not at all once
// they stop. Adding and removing a call is a lock and a few pointers, where a timer per
// call is a timer heap insertion and deletion, two allocations and a map for the
// contexts grpc-go derives from it.
type callDeadlines struct {
	d time.Duration

	mu         sync.Mutex
	head, tail *callCtx
	timer      *time.Timer // made at the first call
	armed      bool        // the timer will fire
}

// start returns the context of a call made with parent now; the caller must call its
// release method when the call returns.
func (w *callDeadlines) start(parent context.Context) *callCtx {
	c := &callCtx{Context: parent, w: w}
	w.mu.Lock()
	c.deadline = time.Now().Add(w.d) // under the lock: the list stays in deadline order
	c.listed = true
	if w.tail == nil {
		w.head = c
	} else {
		w.tail.next, c.prev = c, w.tail
	}
	w.tail = c
	if !w.armed {
		w.armLocked(c.deadline)
	}
	w.mu.Unlock()
	return c
}

func (w *callDeadlines) armLocked(at time.Time) {
	w.armed = true
	if w.timer == nil {
		w.timer = time.AfterFunc(time.Until(at), w.expire)
		return
	}
	w.timer.Reset(time.Until(at))
}

// expire ends the calls whose deadline has passed and arms the timer for the next one.
func (w *callDeadlines) expire() {
	now := time.Now()
	var expired []*callCtx
	w.mu.Lock()
	for c := w.head; c != nil && !now.Before(c.deadline); c = w.head {
		w.unlinkLocked(c)
		expired = append(expired, c)
	}
	w.armed = false
	if w.head != nil {
		w.armLocked(w.head.deadline)
	}
	w.mu.Unlock()
	for _, c := range expired {
		c.cancel(context.DeadlineExceeded)
	}
}

// remove takes c off the list if it is still on it.
func (w *callDeadlines) remove(c *callCtx) {
	w.mu.Lock()
	if c.listed {
		w.unlinkLocked(c)
	}
	w.mu.Unlock()
}

func (w *callDeadlines) unlinkLocked(c *callCtx) {
	if c.prev == nil {
		w.head = c.next
	} else {
		c.prev.next = c.next
	}
	if c.next == nil {
		w.tail = c.prev
	} else {
		c.next.prev = c.prev
	}
	c.prev, c.next, c.listed = nil, nil, false
}

// callCtx is the context of one client call bounded by [callDeadlines]: it reports its
// deadline, so that transports send it on (gRPC's grpc-timeout), is done when the deadline
// passes (Err: DeadlineExceeded), when the parent is done (the parent's error) or when
// the call returns (Canceled), and has no timer of its own.
//
// Contexts derived from it (grpc-go derives a cancelable one for every call) attach
// through its AfterFunc method, which the context package uses for a parent it does not
// know, so no goroutine watches it. Its Done channel is made on first use, and only then
// does it watch the parent, if the parent can be canceled. context.Cause of a callCtx
// that expired is the cause of the nearest cancelable context above it (nil if there is
// none or it was not canceled), as for the lazy deadline of server calls (deadlineCtx).
type callCtx struct {
	context.Context // the parent
	w               *callDeadlines
	deadline        time.Time

	prev, next *callCtx // in w's list; guarded by w.mu
	listed     bool     // guarded by w.mu

	mu         sync.Mutex
	done       chan struct{} // made by the first Done
	err        error
	first      afterEntry // the first AfterFunc, without an allocation
	afters     []*afterEntry
	stopParent func() bool // set when Done made the channel under a cancelable parent
}

// afterEntry is a function registered with callCtx.AfterFunc.
type afterEntry struct {
	f    func()
	used bool
}

// Deadline returns the call's deadline.
func (c *callCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// Done returns a channel closed when the call's context ends.
func (c *callCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedChan
		}
		c.done = make(chan struct{})
		if c.Context.Done() != nil {
			// context.AfterFunc runs parentDone in its own goroutine, after this returns
			// and releases c.mu, even when the parent is done already.
			c.stopParent = context.AfterFunc(c.Context, c.parentDone)
		}
	}
	return c.done
}

func (c *callCtx) parentDone() { c.cancel(c.Context.Err()) }

// Err returns nil while the call's context has not ended, then why it ended.
func (c *callCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if perr := c.Context.Err(); perr != nil {
		c.cancel(perr)
		c.mu.Lock()
		err = c.err
		c.mu.Unlock()
	}
	return err
}

// AfterFunc arranges to call f once the context ends; the context package uses it to
// attach the contexts derived from c. stop reports whether it kept f from being called.
func (c *callCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	e := &c.first
	if e.f != nil || e.used {
		e = &afterEntry{}
		c.afters = append(c.afters, e)
	}
	e.f = f
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.f == nil {
			return false
		}
		e.f, e.used = nil, true
		return true
	}
}

// cancel ends the context with err, unless it has ended already: it closes Done, leaves
// the deadline list and calls the functions registered with AfterFunc.
func (c *callCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	var fs [4]func()
	run := fs[:0]
	if c.first.f != nil {
		run = append(run, c.first.f)
		c.first.f, c.first.used = nil, true
	}
	for _, e := range c.afters {
		if e.f != nil {
			run = append(run, e.f)
			e.f, e.used = nil, true
		}
	}
	c.afters = nil
	stop := c.stopParent
	c.stopParent = nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	c.w.remove(c)
	for _, f := range run {
		f()
	}
}

// release ends the context when the call returns, as the cancel func of
// context.WithTimeout does.
func (c *callCtx) release() { c.cancel(context.Canceled) }

func (c *callCtx) String() string { return "resilience.callCtx" }
