package pubsub

import (
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A dispatcher runs the handlers of a consumer's messages on a fixed number of workers.
// Messages without a key, and all messages of an Unordered subscription, run in any
// order, as workers become free, and a failed one is naked for JetStream to redeliver.
//
// Messages with a key run one at a time per key, in the order they arrived: a key's
// later messages wait in its queue, unacknowledged, while an earlier one runs. A failed
// message is not naked: it stays at the head of its key's queue and runs again here after
// the backoff delay, so the key's later messages wait until it succeeds or is
// dead-lettered, while other keys go on. Messages waiting longer than a third of the ack
// wait are marked in progress, so that JetStream does not redeliver them meanwhile.
type dispatcher struct {
	s       *subscription
	keyed   bool
	limit   int           // at most this many messages held; Consume's callback waits for room
	refresh time.Duration // how often waiting messages are marked in progress

	mu      sync.Mutex
	work    *sync.Cond  // a message is ready, or the dispatcher is closing
	room    *sync.Cond  // held fell below limit, or the dispatcher is closing
	ready   []*delivery // messages that can run, from ready[first] on
	first   int
	keys    map[string]*delivery   // a key's held messages: the head, linked through next
	waiting map[string]*time.Timer // keys whose head waits for a retry
	held    int
	full    bool      // Consume's callback waits for room
	free    *delivery // finished deliveries, linked through next, for the next messages
	closed  bool
	stop    chan struct{}
}

// delivery is one message held by a dispatcher.
type delivery struct {
	m       jetstream.Msg
	key     string
	retries int           // failed attempts handled here, without a redelivery
	delay   time.Duration // the wait before the next retry
	since   time.Time     // when the message was received or last marked in progress
	running bool
	next    *delivery // the key's next message (or the next free delivery)
	tail    *delivery // on a key's head: the key's last message
}

func newDispatcher(s *subscription, keyed bool) *dispatcher {
	d := &dispatcher{
		s: s, keyed: keyed,
		limit:   s.opts.maxAckPending,
		refresh: s.opts.ackWait / 3,
		keys:    map[string]*delivery{},
		waiting: map[string]*time.Timer{},
		stop:    make(chan struct{}),
	}
	if d.limit <= 0 {
		d.limit = 4096
	}
	if d.refresh <= 0 {
		d.refresh = 10 * time.Second
	}
	d.work = sync.NewCond(&d.mu)
	d.room = sync.NewCond(&d.mu)
	for range s.opts.concurrency {
		s.wg.Go(d.run)
	}
	if keyed {
		s.wg.Go(d.keepAlive)
	}
	return d
}

// messageKey returns the ordering key in the headers, or "".
func messageKey(h nats.Header) string {
	if v, ok := h[HeaderKey]; ok && len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, HeaderKey) {
			return v[0]
		}
	}
	return ""
}

// add takes a message from the consumer; it waits while the dispatcher holds its limit.
func (d *dispatcher) add(m jetstream.Msg) {
	var key string
	if d.keyed {
		key = messageKey(m.Headers())
	}
	now := time.Now()
	d.mu.Lock()
	for d.held >= d.limit && !d.closed {
		d.full = true
		d.room.Wait()
	}
	dv := d.free
	if dv != nil {
		d.free = dv.next
		dv.next = nil
	} else {
		dv = &delivery{}
	}
	dv.m, dv.key, dv.since = m, key, now
	d.held++
	ready := true
	if key != "" {
		if head, ok := d.keys[key]; ok {
			head.tail.next = dv
			head.tail = dv
			ready = false
		} else {
			dv.tail = dv
			d.keys[key] = dv
		}
	}
	if ready {
		d.ready = append(d.ready, dv)
	}
	d.mu.Unlock()
	if ready {
		d.work.Signal()
	}
}

// popReady takes the first ready message; d.mu is held and one is ready. The array is
// used again from its start when it drains, or moved down when its taken half is large.
func (d *dispatcher) popReady() *delivery {
	dv := d.ready[d.first]
	d.ready[d.first] = nil
	d.first++
	switch {
	case d.first == len(d.ready):
		d.ready, d.first = d.ready[:0], 0
	case d.first >= 64 && 2*d.first >= len(d.ready):
		n := copy(d.ready, d.ready[d.first:])
		clear(d.ready[n:])
		d.ready, d.first = d.ready[:n], 0
	}
	return dv
}

// release puts a finished delivery on the free list; d.mu is held.
func (d *dispatcher) release(dv *delivery) {
	*dv = delivery{next: d.free}
	d.free = dv
}

// dropKey gives the held messages of a key, from its head dv on, back to JetStream, naked
// with dv's delay; d.mu is held.
func (d *dispatcher) dropKey(dv *delivery) {
	delete(d.keys, dv.key)
	delay := dv.delay
	for q := dv; q != nil; {
		next := q.next
		_ = q.m.NakWithDelay(delay)
		d.held--
		d.release(q)
		q = next
	}
}

// close is called once no more messages will be added: the workers finish the messages
// that can run now and return; keys waiting for a retry give their messages back to
// JetStream, naked in order with the retry's delay.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	close(d.stop)
	for key, t := range d.waiting {
		if t.Stop() {
			delete(d.waiting, key)
			d.dropKey(d.keys[key])
		}
	}
	d.mu.Unlock()
	d.work.Broadcast()
	d.room.Broadcast()
}

// run runs messages until the dispatcher is closed and nothing is left to run. A worker
// that finishes a message wakes no other: it runs the key's next message itself, and the
// callback that adds a message wakes one worker.
func (d *dispatcher) run() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for d.first == len(d.ready) && (!d.closed || len(d.waiting) > 0) {
			d.work.Wait()
		}
		if d.first == len(d.ready) {
			d.work.Broadcast() // the other workers see the end too
			return
		}
		dv := d.popReady()
		dv.running = true
		d.mu.Unlock()
		var retry bool
		if d.s.ctx.Err() != nil { // a Stop gave up waiting: give the rest back
			_ = dv.m.Nak()
		} else {
			dv.delay, retry = d.s.handle(dv.m, dv.retries, dv.key != "")
		}
		d.mu.Lock()
		dv.running = false
		if retry {
			dv.retries++
			dv.since = time.Now()
			if d.closed || d.s.ctx.Err() != nil {
				d.dropKey(dv)
				d.wakeAdder()
				d.work.Broadcast()
				continue
			}
			d.waiting[dv.key] = time.AfterFunc(dv.delay, func() {
				d.mu.Lock()
				if _, ok := d.waiting[dv.key]; ok {
					delete(d.waiting, dv.key)
					d.ready = append(d.ready, dv)
				}
				d.mu.Unlock()
				d.work.Broadcast()
			})
			continue
		}
		d.held--
		if dv.key != "" {
			if next := dv.next; next == nil {
				delete(d.keys, dv.key)
			} else {
				next.tail = dv.tail
				d.keys[dv.key] = next
				d.ready = append(d.ready, next)
			}
		}
		d.release(dv)
		d.wakeAdder()
		if d.closed {
			d.work.Broadcast() // workers waiting for retries may be done
		}
	}
}

// wakeAdder wakes Consume's callback if it waits for room; d.mu is held.
func (d *dispatcher) wakeAdder() {
	if d.full && d.held < d.limit {
		d.full = false
		d.room.Broadcast()
	}
}

// keepAlive marks messages that wait behind their key's earlier messages in progress, so
// that JetStream does not redeliver them while they wait.
func (d *dispatcher) keepAlive() {
	t := time.NewTicker(d.refresh)
	defer t.Stop()
	var due []jetstream.Msg
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			due = due[:0]
			d.mu.Lock()
			for _, head := range d.keys {
				for dv := head; dv != nil; dv = dv.next {
					if !dv.running && now.Sub(dv.since) >= d.refresh {
						dv.since = now
						due = append(due, dv.m)
					}
				}
			}
			d.mu.Unlock()
			for _, m := range due {
				_ = m.InProgress()
			}
		}
	}
}
