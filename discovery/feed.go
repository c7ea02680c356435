package discovery

import (
	"maps"
	"slices"
	"sync"
)

// Feed delivers instance sets to one watcher: its channel holds at most one set, and a set
// not yet received is replaced by a newer one, so a slow receiver never blocks the backend
// and always gets the latest state. Backends return Feed.C from Watch.
type Feed struct {
	mu     sync.Mutex
	ch     chan []Instance
	last   []Instance
	sent   bool
	closed bool
}

// NewFeed returns an empty Feed.
func NewFeed() *Feed { return &Feed{ch: make(chan []Instance, 1)} }

// C returns the channel the sets are delivered on.
func (f *Feed) C() <-chan []Instance { return f.ch }

// Send delivers a copy of set, sorted by ID, unless it equals the set sent last. The first
// Send always delivers, even an empty set. Send after Close does nothing.
func (f *Feed) Send(set []Instance) {
	set = slices.Clone(set)
	Sort(set)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || (f.sent && slices.EqualFunc(set, f.last, Instance.Equal)) {
		return
	}
	f.sent, f.last = true, set
	select {
	case <-f.ch: // drop the unread older set
	default:
	}
	f.ch <- set
}

// SendMap delivers the values of m, as Send does.
func (f *Feed) SendMap(m map[string]Instance) { f.Send(slices.Collect(maps.Values(m))) }

// Close closes the channel. It is safe to call more than once.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.ch)
	}
}
