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
	cond    *sync.Cond // signals work, room, or closing
	ready   []*delivery
	keys    map[string][]*delivery // a key's held messages, the head first
	waiting map[string]*time.Timer // keys whose head waits for a retry
	held    int
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
}

func newDispatcher(s *subscription, keyed bool) *dispatcher {
	d := &dispatcher{
		s: s, keyed: keyed,
		limit:   s.opts.maxAckPending,
		refresh: s.opts.ackWait / 3,
		keys:    map[string][]*delivery{},
		waiting: map[string]*time.Timer{},
		stop:    make(chan struct{}),
	}
	if d.limit <= 0 {
		d.limit = 4096
	}
	if d.refresh <= 0 {
		d.refresh = 10 * time.Second
	}
	d.cond = sync.NewCond(&d.mu)
	for range s.opts.concurrency {
		s.wg.Go(d.work)
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
	dv := &delivery{m: m, since: time.Now()}
	if d.keyed {
		dv.key = messageKey(m.Headers())
	}
	d.mu.Lock()
	for d.held >= d.limit && !d.closed {
		d.cond.Wait()
	}
	d.held++
	if dv.key == "" {
		d.ready = append(d.ready, dv)
	} else if q, ok := d.keys[dv.key]; ok {
		d.keys[dv.key] = append(q, dv)
	} else {
		d.keys[dv.key] = []*delivery{dv}
		d.ready = append(d.ready, dv)
	}
	d.mu.Unlock()
	d.cond.Signal()
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
			q := d.keys[key]
			delete(d.keys, key)
			d.held -= len(q)
			for _, dv := range q {
				_ = dv.m.NakWithDelay(q[0].delay)
			}
		}
	}
	d.mu.Unlock()
	d.cond.Broadcast()
}

// work runs messages until the dispatcher is closed and nothing is left to run.
func (d *dispatcher) work() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for len(d.ready) == 0 && (!d.closed || len(d.waiting) > 0) {
			d.cond.Wait()
		}
		if len(d.ready) == 0 {
			return
		}
		dv := d.ready[0]
		d.ready[0] = nil
		d.ready = d.ready[1:]
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
				q := d.keys[dv.key]
				delete(d.keys, dv.key)
				d.held -= len(q)
				for _, m := range q {
					_ = m.m.NakWithDelay(dv.delay)
				}
				d.cond.Broadcast()
				continue
			}
			d.waiting[dv.key] = time.AfterFunc(dv.delay, func() {
				d.mu.Lock()
				if _, ok := d.waiting[dv.key]; ok {
					delete(d.waiting, dv.key)
					d.ready = append(d.ready, dv)
				}
				d.mu.Unlock()
				d.cond.Broadcast()
			})
			continue
		}
		d.held--
		if dv.key != "" {
			if q := d.keys[dv.key][1:]; len(q) == 0 {
				delete(d.keys, dv.key)
			} else {
				d.keys[dv.key] = q
				d.ready = append(d.ready, q[0])
			}
		}
		d.cond.Broadcast()
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
			for _, q := range d.keys {
				for _, dv := range q {
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
