package binding

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/svcerr"
)

// Headers of a reply to a core NATS request whose handler failed.
const (
	// HeaderErrorKind carries the svcerr kind of the handler's error.
	HeaderErrorKind = "Svckit-Error-Kind"
	// HeaderError carries the caller-safe message of the handler's error.
	HeaderError = "Svckit-Error"
)

// stopTimeout bounds how long Run waits for running handlers after ctx ended.
const stopTimeout = 30 * time.Second

// natsInput is the nats-subscribe input.
type natsInput struct {
	name        string
	subject     string
	queue       string
	bus         *pubsub.Bus // JetStream; nil for core NATS
	nc          *nats.Conn
	subOpts     []pubsub.SubscribeOption
	concurrency int
	timeout     time.Duration
	obs         *observer
}

func newNATSSubscribe(name string, c *NATSSubscribeConfig, d *Deps, obs *observer) (*natsInput, error) {
	if c.Subject == "" {
		return nil, required("subject")
	}
	if strings.ContainsAny(c.Subject, " \t\r\n") || strings.HasPrefix(c.Subject, ".") || strings.HasSuffix(c.Subject, ".") || strings.Contains(c.Subject, "..") {
		return nil, invalid("subject", "%q is not a NATS subject", c.Subject)
	}
	in := &natsInput{name: name, subject: c.Subject, queue: c.Queue, concurrency: c.Concurrency, timeout: c.Timeout, obs: obs}
	switch {
	case c.Broadcast && c.Queue != "":
		return nil, invalid("broadcast", "set together with queue; choose one")
	case c.Broadcast:
	case in.queue == "" && d.Service != "":
		in.queue = d.Service + "-" + name
	case in.queue == "":
		in.queue = name
	}
	if strings.ContainsAny(in.queue, " \t\r\n*>") {
		return nil, invalid("queue", "%q is not a queue group name", in.queue)
	}
	if in.concurrency == 0 {
		in.concurrency = 8
	}
	if in.concurrency < 0 {
		return nil, invalid("concurrency", "must be positive")
	}
	if c.Timeout < 0 {
		return nil, invalid("timeout", "must not be negative")
	}
	if !c.JetStream {
		for _, f := range []struct {
			name string
			set  bool
		}{{"max_attempts", c.MaxAttempts != 0}, {"backoff", len(c.Backoff) > 0}, {"ack_wait", c.AckWait != 0}, {"from_new", c.FromNew}} {
			if f.set {
				return nil, invalid(f.name, "only with jetstream: true")
			}
		}
		if in.nc = d.nats(); in.nc == nil {
			return nil, invalid("subject", "core NATS: neither Deps.NATS nor Deps.Bus is set")
		}
		return in, nil
	}
	if in.bus = d.Bus; in.bus == nil {
		return nil, invalid("jetstream", "Deps.Bus is not set")
	}
	if c.MaxAttempts < 0 {
		return nil, invalid("max_attempts", "must be positive")
	}
	if c.MaxAttempts > 0 {
		in.subOpts = append(in.subOpts, pubsub.MaxAttempts(c.MaxAttempts))
	}
	for _, b := range c.Backoff {
		if b < 0 {
			return nil, invalid("backoff", "must not be negative")
		}
	}
	if len(c.Backoff) > 0 {
		in.subOpts = append(in.subOpts, pubsub.Backoff(c.Backoff...))
	}
	if c.AckWait < 0 {
		return nil, invalid("ack_wait", "must not be negative")
	}
	if c.AckWait > 0 {
		in.subOpts = append(in.subOpts, pubsub.AckWait(c.AckWait))
	}
	if c.FromNew {
		in.subOpts = append(in.subOpts, pubsub.FromNew())
	}
	in.subOpts = append(in.subOpts, pubsub.Concurrency(in.concurrency))
	return in, nil
}

// Name implements Input.
func (n *natsInput) Name() string { return n.name }

// Run implements Input.
func (n *natsInput) Run(ctx context.Context, h Handler) error {
	if n.bus != nil {
		return n.runJetStream(ctx, h)
	}
	return n.runCore(ctx, h)
}

func (n *natsInput) call(ctx context.Context, h Handler, e Event) error {
	if n.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.timeout)
		defer cancel()
	}
	return n.obs.handle(ctx, h, e)
}

func (n *natsInput) runJetStream(ctx context.Context, h Handler) error {
	sub, err := n.bus.Subscribe(ctx, n.subject, n.queue, func(ctx context.Context, m *pubsub.Message) error {
		md := lowerKeys(m.Headers, 3)
		if m.Type != "" {
			md["type"] = m.Type
		}
		if m.Source != "" {
			md["source"] = m.Source
		}
		if m.ContentType != "" {
			md["content-type"] = m.ContentType
		}
		at := m.Time
		if at.IsZero() { // published without CloudEvents headers
			at = time.Now()
		}
		err := n.call(ctx, h, Event{Binding: n.name, ID: m.ID, Time: at, Subject: m.Subject, Attempt: m.Attempt, Metadata: md, Data: m.Data})
		if err != nil && !Retryable(err) {
			return pubsub.Permanent(err)
		}
		return err
	}, n.subOpts...)
	if err != nil {
		return fmt.Errorf("binding %s: %w", n.name, err)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	return sub.Stop(sctx)
}

func (n *natsInput) runCore(ctx context.Context, h Handler) error {
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	sem := make(chan struct{}, n.concurrency)
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup
	)
	cb := func(m *nats.Msg) {
		sem <- struct{}{} // at most concurrency handlers; the rest wait in the client
		mu.Lock()
		if closed {
			mu.Unlock()
			<-sem
			return
		}
		wg.Add(1)
		mu.Unlock()
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n.handleCore(hctx, h, m)
		}()
	}
	var sub *nats.Subscription
	var err error
	if n.queue == "" {
		sub, err = n.nc.Subscribe(n.subject, cb)
	} else {
		sub, err = n.nc.QueueSubscribe(n.subject, n.queue, cb)
	}
	if err != nil {
		return fmt.Errorf("binding %s: subscribe %s: %w", n.name, n.subject, err)
	}
	if err := n.nc.Flush(); err != nil { // the server has the subscription when Run is running
		n.obs.log.Warn("binding: flush after subscribe", "binding", n.name, "err", err)
	}
	<-ctx.Done()
	closedCh := sub.StatusChanged(nats.SubscriptionClosed)
	if err := sub.Drain(); err == nil {
		select {
		case <-closedCh:
		case <-time.After(stopTimeout):
		}
	}
	mu.Lock()
	closed = true
	mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		hcancel()
		<-done
	}
	return nil
}

func (n *natsInput) handleCore(ctx context.Context, h Handler, m *nats.Msg) {
	md := make(map[string]string, len(m.Header))
	id := ""
	for k, vs := range m.Header {
		if len(vs) == 0 {
			continue
		}
		switch lk := strings.ToLower(k); lk {
		case strings.ToLower(nats.MsgIdHdr):
			id = vs[0]
		default:
			md[lk] = vs[0]
		}
	}
	if id == "" {
		id = md[pubsub.HeaderID]
	}
	if id == "" {
		id = randomID()
	}
	if m.Header != nil {
		ctx = observe.Propagator().Extract(ctx, natsCarrier(m.Header))
	}
	err := n.call(ctx, h, Event{Binding: n.name, ID: id, Time: time.Now(), Subject: m.Subject, Attempt: 1, Metadata: md, Data: m.Data})
	if m.Reply == "" {
		return
	}
	reply := nats.NewMsg(m.Reply)
	if err != nil {
		e := svcerr.From(err)
		reply.Header.Set(HeaderErrorKind, e.Kind.String())
		reply.Header.Set(HeaderError, e.Message)
	}
	if rerr := m.RespondMsg(reply); rerr != nil {
		n.obs.log.Warn("binding: reply", "binding", n.name, "id", id, "err", rerr)
	}
}

// lowerKeys copies m with lower-case keys, with room for extra more.
func lowerKeys(m map[string]string, extra int) map[string]string {
	out := make(map[string]string, len(m)+extra)
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}
