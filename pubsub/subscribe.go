package pubsub

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/jsx"
)

// SubscribeOption configures a subscription.
type SubscribeOption func(*subOptions)

type subOptions struct {
	maxAttempts   int
	backoff       []time.Duration
	ackWait       time.Duration
	concurrency   int
	maxAckPending int
	ordered       bool
	unordered     bool
	fromNew       bool
	mws           []Middleware
}

// MaxAttempts sets how often a message is delivered before it is dead-lettered; default 5.
func MaxAttempts(n int) SubscribeOption { return func(o *subOptions) { o.maxAttempts = max(n, 1) } }

// Backoff sets the redelivery delays after failed attempts: the n-th failure waits
// delays[n-1], or the last delay when there are fewer. Default 100ms, 500ms, 2s, 5s, 10s.
func Backoff(delays ...time.Duration) SubscribeOption {
	return func(o *subOptions) { o.backoff = delays }
}

// AckWait sets how long a delivered message may stay unacknowledged (a handler running,
// or a crashed process) before JetStream delivers it again; default 30s.
func AckWait(d time.Duration) SubscribeOption { return func(o *subOptions) { o.ackWait = d } }

// Concurrency sets how many handlers run at once; default 8. Messages with the same key
// still run one at a time, in order, unless the subscription is [Unordered]. [Ordered]
// subscriptions run one handler per key partition for keyed messages.
func Concurrency(n int) SubscribeOption { return func(o *subOptions) { o.concurrency = max(n, 1) } }

// MaxAckPending limits how many messages the group may have delivered and not yet
// acknowledged; default 1024.
func MaxAckPending(n int) SubscribeOption { return func(o *subOptions) { o.maxAckPending = n } }

// Ordered handles the messages of each key in publish order across all the members of
// a group, through one consumer per key partition with one message in flight each (see
// the package documentation). The subject must not end in ">". Without it, a
// subscription keeps each key's order within itself.
func Ordered() SubscribeOption { return func(o *subOptions) { o.ordered = true; o.unordered = false } }

// Unordered gives up the order of each key's messages: keyed messages run like unkeyed
// ones, as many at once as the concurrency allows, and a failed one is redelivered by
// JetStream while the key's later messages go on. For consumers that do not care about
// order, such as ones that only count or index events.
func Unordered() SubscribeOption {
	return func(o *subOptions) { o.unordered = true; o.ordered = false }
}

// FromNew makes a new group start with messages published from now on; by default a new
// group starts with the oldest message the stream keeps.
func FromNew() SubscribeOption { return func(o *subOptions) { o.fromNew = true } }

// WithMiddleware wraps the handler, the first middleware outermost.
func WithMiddleware(mws ...Middleware) SubscribeOption {
	return func(o *subOptions) { o.mws = append(o.mws, mws...) }
}

type subscription struct {
	bus     *Bus
	subject string
	group   string
	opts    subOptions
	handler Handler
	dlq     string

	ctx    context.Context // for handlers; canceled when a Stop gives up waiting
	cancel context.CancelFunc
	ccs    []jetstream.ConsumeContext
	disp   *dispatcher
	wg     sync.WaitGroup
	once   sync.Once
	err    error
	done   chan struct{}
}

// Subscribe implements Subscriber. The subscription also stops when ctx ends.
func (b *Bus) Subscribe(ctx context.Context, subject, group string, h Handler, opts ...SubscribeOption) (Subscription, error) {
	o := subOptions{
		maxAttempts:   5,
		backoff:       []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 5 * time.Second, 10 * time.Second},
		ackWait:       30 * time.Second,
		concurrency:   8,
		maxAckPending: 1024,
	}
	for _, fn := range opts {
		fn(&o)
	}
	if subject == "" || h == nil {
		return nil, errors.New("pubsub: subscribe needs a subject and a handler")
	}
	if o.ordered && (subject == ">" || strings.HasSuffix(subject, ".>")) {
		return nil, fmt.Errorf("pubsub: ordered subscription on %q: subject must not end in >", subject)
	}
	var stream string
	err := jsx.Retry(ctx, func(ctx context.Context) error {
		var err error
		stream, err = b.js.StreamNameBySubject(ctx, subject)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pubsub: no stream stores %q: %w", subject, err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &subscription{
		bus: b, subject: subject, group: group, opts: o,
		handler: Chain(o.mws...)(h),
		dlq:     b.DeadLetterSubject(group),
		ctx:     sctx, cancel: cancel,
		done: make(chan struct{}),
	}
	type part struct {
		name      string
		filters   []string
		partition bool // one key partition of an Ordered subscription
	}
	base := consumerName(group, subject)
	var parts []part
	if o.ordered {
		parts = append(parts, part{base + "_pn", []string{subject}, false})
		for p := range b.cfg.Partitions {
			parts = append(parts, part{base + "_p" + strconv.Itoa(p), []string{subject + keyToken + strconv.Itoa(p)}, true})
		}
	} else if subject == ">" || strings.HasSuffix(subject, ".>") {
		parts = append(parts, part{base, []string{subject}, false})
	} else {
		parts = append(parts, part{base, []string{subject, subject + keyToken + "*"}, false})
	}
	// Unkeyed messages of an Ordered subscription run with full concurrency too.
	s.disp = newDispatcher(s, !o.unordered && !o.ordered)
	for _, p := range parts {
		cc := jetstream.ConsumerConfig{
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       o.ackWait,
			MaxDeliver:    -1,
			MaxAckPending: o.maxAckPending,
			Replicas:      0,
		}
		if len(p.filters) == 1 {
			cc.FilterSubject = p.filters[0]
		} else {
			cc.FilterSubjects = p.filters
		}
		if p.partition {
			cc.MaxAckPending = 1
		}
		if group != "" {
			cc.Durable = p.name
		} else {
			cc.InactiveThreshold = time.Minute
		}
		if group == "" || o.fromNew {
			cc.DeliverPolicy = jetstream.DeliverNewPolicy
		}
		var cons jetstream.Consumer
		err := jsx.Retry(ctx, func(ctx context.Context) error {
			var err error
			cons, err = b.js.CreateOrUpdateConsumer(ctx, stream, cc)
			return err
		})
		if err == nil {
			var consume jetstream.ConsumeContext
			if p.partition {
				consume, err = cons.Consume(func(m jetstream.Msg) { s.handle(m, 0, false) }, jetstream.PullMaxMessages(1), pullExpiry, jetstream.ConsumeErrHandler(s.consumeErr))
			} else {
				consume, err = cons.Consume(s.disp.add,
					jetstream.PullMaxMessages(min(max(2*o.concurrency, 256), max(o.maxAckPending, 1))), pullExpiry, jetstream.ConsumeErrHandler(s.consumeErr))
			}
			if err == nil {
				s.ccs = append(s.ccs, consume)
			}
		}
		if err != nil {
			s.Stop(context.Background())
			return nil, fmt.Errorf("pubsub: subscribe %q group %q: %w", subject, group, err)
		}
	}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), o.ackWait)
			defer cancel()
			s.Stop(sctx)
		case <-s.done:
		}
	}()
	return s, nil
}

// pullExpiry bounds each pull request. The client notices a lost pull request (its
// consumer's leader moved to another server) after two missed heartbeats, half the
// expiry each: 5s here instead of the client's default 30s.
const pullExpiry = jetstream.PullExpiry(5 * time.Second)

// consumerName returns the durable name for a group's subscription to subject: the group
// with characters consumer names may not have replaced, and a hash of the subject, so one
// group can subscribe to several subjects.
func consumerName(group, subject string) string {
	h := fnv.New32a()
	h.Write([]byte(subject))
	g := strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '/', '\\':
			return '_'
		}
		return r
	}, group)
	if g == "" {
		g = "eph"
	}
	return g + "_" + strconv.FormatUint(uint64(h.Sum32()), 36)
}

func (s *subscription) consumeErr(_ jetstream.ConsumeContext, err error) {
	s.bus.logger.Debug("pubsub: consume", slog.String("subject", s.subject), slog.String("group", s.group), slog.String("error", err.Error()))
}

// handle handles one delivery: ack on success, dead letter after the last attempt, and
// on a failure with attempts left a delayed nak, or, if local, the delay before the
// caller runs the message again itself (retry true). retries counts the failed attempts
// the caller ran without a redelivery; they count as attempts.
func (s *subscription) handle(m jetstream.Msg, retries int, local bool) (delay time.Duration, retry bool) {
	msg := decodeMessage(m.Subject(), m.Headers(), m.Data())
	msg.Group = s.group
	if delivered, seq, ok := ackMetadata(m.Reply()); ok {
		msg.Attempt, msg.Sequence = int(delivered), seq
	} else if meta, err := m.Metadata(); err == nil {
		msg.Attempt, msg.Sequence = int(meta.NumDelivered), meta.Sequence.Stream
	}
	msg.Attempt += retries
	ctx := s.bus.prop.Extract(s.ctx, mapCarrier(msg.Headers))
	if msg.Attempt > s.opts.maxAttempts {
		// The last attempt ended without an answer (a crash): give up now.
		return s.deadLetter(ctx, m, msg, errors.New("delivered more often than allowed"), local)
	}
	err := s.call(ctx, msg)
	switch {
	case err == nil:
		if err := m.Ack(); err != nil {
			s.bus.logger.Warn("pubsub: ack", slog.String("subject", msg.Subject), slog.String("id", msg.ID), slog.String("error", err.Error()))
		}
	case IsPermanent(err) || msg.Attempt >= s.opts.maxAttempts:
		return s.deadLetter(ctx, m, msg, err, local)
	case local:
		return s.delay(msg.Attempt), true
	default:
		_ = m.NakWithDelay(s.delay(msg.Attempt))
	}
	return 0, false
}

// ackMetadata reads the delivery count and the stream sequence from the reply subject of
// a JetStream message, as Msg.Metadata does, without building its MsgMetadata:
//
//	$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>
//	$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>[.<token>]
//
// ok is false when reply is neither.
func ackMetadata(reply string) (delivered, seq uint64, ok bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return 0, 0, false
	}
	n := strings.Count(reply, ".") + 1
	var at int // the position of <delivered>
	switch {
	case n == 9:
		at = 4
	case n >= 11:
		at = 6
	default:
		return 0, 0, false
	}
	rest := reply
	for range at {
		_, rest, _ = strings.Cut(rest, ".")
	}
	d, rest, _ := strings.Cut(rest, ".")
	sq, _, _ := strings.Cut(rest, ".")
	delivered, ok1 := parseUint(d)
	seq, ok2 := parseUint(sq)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return delivered, seq, true
}

// parseUint parses a non-empty decimal number of at most 19 digits.
func parseUint(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

func (s *subscription) call(ctx context.Context, msg *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pubsub: handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return s.handler(ctx, msg)
}

func (s *subscription) delay(attempt int) time.Duration {
	if len(s.opts.backoff) == 0 {
		return 0
	}
	return s.opts.backoff[min(max(attempt, 1), len(s.opts.backoff))-1]
}

// deadLetter publishes the message to the dead-letter subject and terminates it. If that
// fails, the message is naked to try again later, or, if local, left to the caller to run
// again after the returned delay (retry true), keeping its key's place.
func (s *subscription) deadLetter(ctx context.Context, m jetstream.Msg, msg *Message, cause error, local bool) (delay time.Duration, retry bool) {
	h := make(nats.Header, len(m.Headers())+4)
	for k, v := range m.Headers() {
		h[k] = v
	}
	h.Set(HeaderDeadSubject, msg.Subject)
	h.Set(HeaderDeadGroup, s.group)
	h.Set(HeaderDeadError, cause.Error())
	h.Set(nats.MsgIdHdr, "dlq:"+s.group+":"+msg.ID)
	nm := &nats.Msg{Subject: s.dlq, Header: h, Data: m.Data()}
	err := jsx.Retry(ctx, func(ctx context.Context) error {
		_, err := s.bus.js.PublishMsg(ctx, nm)
		return err
	})
	if err != nil {
		s.bus.logger.Error("pubsub: dead letter", slog.String("subject", msg.Subject), slog.String("id", msg.ID), slog.String("error", err.Error()))
		if local {
			return s.delay(len(s.opts.backoff)), true
		}
		_ = m.NakWithDelay(s.delay(len(s.opts.backoff)))
		return 0, false
	}
	s.bus.logger.Warn("pubsub: message dead-lettered", slog.String("subject", msg.Subject), slog.String("id", msg.ID),
		slog.String("group", s.group), slog.Int("attempt", msg.Attempt), slog.String("error", cause.Error()))
	_ = m.Term()
	return 0, false
}

// Stop implements Subscription.
func (s *subscription) Stop(ctx context.Context) error {
	s.once.Do(func() {
		defer close(s.done)
		for _, cc := range s.ccs {
			cc.Drain()
		}
		finished := make(chan struct{})
		go func() {
			for _, cc := range s.ccs {
				<-cc.Closed()
			}
			s.disp.close()
			s.wg.Wait()
			close(finished)
		}()
		select {
		case <-finished:
		case <-ctx.Done():
			s.cancel()
			s.err = fmt.Errorf("pubsub: stop %q: %w", s.subject, ctx.Err())
		}
		s.cancel()
		if err := s.bus.nc.FlushTimeout(5 * time.Second); err != nil && s.err == nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.err = fmt.Errorf("pubsub: stop %q: flush acks: %w", s.subject, err)
		}
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
	})
	return s.err
}
