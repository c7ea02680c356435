package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/internal/jsx"
	"github.com/svckit/svckit/observe"
)

// Config describes where the bus is and the stream it uses.
type Config struct {
	// URL is a comma-separated list of nats:// URLs; Connect requires it. For tests and
	// local runs, start an embedded server with package natsserver and pass its
	// ClientURL: the embedded server is always an explicit choice, never a fallback.
	URL string
	// Stream is the JetStream stream for the events; default "EVENTS".
	Stream string
	// Subjects are the subjects the stream stores; default "events.>".
	Subjects []string
	// Replicas is the stream's replica count; default 1 (3 is usual on a cluster).
	Replicas int
	// DuplicateWindow is how long JetStream remembers message ids to drop duplicates;
	// default 2 minutes (in a svckit service, App.Bus takes NATS_DUPLICATE_WINDOW). The
	// server keeps about 200 bytes per message published within it.
	DuplicateWindow time.Duration
	// MaxAge is how long the stream keeps messages; default 7 days.
	MaxAge time.Duration
	// Partitions is the number of key partitions (see the package documentation); default
	// 8. Every publisher and ordered subscriber of a subject must use the same number.
	Partitions int
	// Source is the CloudEvents source of published events, such as the service name;
	// default "svckit".
	Source string
	// AckTimeout is how long Publish waits for JetStream to acknowledge a message (or a
	// batch) before it publishes it again (the message id makes that safe); default 5s.
	// Acks go missing when the connection moves to another server of a cluster.
	AckTimeout time.Duration
	// NoBatchPublish makes Publish wait for one acknowledgement per message even where
	// the server takes fast batches (see Bus.Publish).
	NoBatchPublish bool
}

// Option configures a Bus.
type Option func(*Bus)

// WithLogger sets the logger for errors that no caller sees (failed acks, dead letters).
func WithLogger(l *slog.Logger) Option { return func(b *Bus) { b.logger = l } }

// WithTracerProvider makes Publish start a producer span per message and inject it; by
// default Publish injects the span context of ctx, if any.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(b *Bus) { b.tp = tp } }

// WithNATSOptions adds options for the NATS connection that Connect makes.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(b *Bus) { b.natsOpts = append(b.natsOpts, opts...) }
}

// Bus is a Publisher and Subscriber on NATS JetStream.
type Bus struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	ownConn  bool
	logger   *slog.Logger
	tp       trace.TracerProvider
	prop     propagation.TextMapPropagator
	natsOpts []nats.Option
	fast     *fastBatches // nil: the stream takes no fast batches

	mu   sync.Mutex
	subs map[*subscription]struct{}
}

var (
	_ Publisher  = (*Bus)(nil)
	_ Subscriber = (*Bus)(nil)
)

func (c *Config) defaults() {
	if c.Stream == "" {
		c.Stream = "EVENTS"
	}
	if len(c.Subjects) == 0 {
		c.Subjects = []string{"events.>"}
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.Partitions <= 0 {
		c.Partitions = 8
	}
	if c.Source == "" {
		c.Source = "svckit"
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 5 * time.Second
	}
}

// Connect connects to the NATS servers at cfg.URL and makes sure the stream and its
// dead-letter stream exist. The client reconnects forever; Close closes it. An empty URL
// is an error: a service in production must not start a NATS server of its own by
// accident.
func Connect(ctx context.Context, cfg Config, opts ...Option) (*Bus, error) {
	cfg.defaults()
	b := &Bus{cfg: cfg}
	for _, o := range opts {
		o(b)
	}
	nopts := append([]nats.Option{
		nats.Name(cfg.Source),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, b.natsOpts...)
	if strings.TrimSpace(cfg.URL) == "" {
		return nil, errors.New("pubsub: no NATS server URL (NATS_URL); for tests and local runs start one with package natsserver")
	}
	nc, err := nats.Connect(cfg.URL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub: connect %s: %w", redactURL(cfg.URL), err)
	}
	bus, err := newBus(ctx, nc, b)
	if err != nil {
		nc.Close()
		return nil, err
	}
	bus.ownConn = true
	return bus, nil
}

// New returns a Bus on an existing connection and makes sure the streams exist. Close
// does not close nc.
func New(ctx context.Context, nc *nats.Conn, cfg Config, opts ...Option) (*Bus, error) {
	cfg.defaults()
	b := &Bus{cfg: cfg}
	for _, o := range opts {
		o(b)
	}
	return newBus(ctx, nc, b)
}

func newBus(ctx context.Context, nc *nats.Conn, b *Bus) (*Bus, error) {
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	b.nc, b.prop, b.subs = nc, observe.Propagator(), make(map[*subscription]struct{})
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096), jetstream.WithPublishAsyncTimeout(b.cfg.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	b.js = js
	streams := []jetstream.StreamConfig{{
		Name:       b.cfg.Stream,
		Subjects:   b.cfg.Subjects,
		Storage:    jetstream.FileStorage,
		Replicas:   b.cfg.Replicas,
		MaxAge:     b.cfg.MaxAge,
		Duplicates: b.cfg.DuplicateWindow,
		// Fast batches: one acknowledgement per Publish call of many messages (the relay's).
		AllowBatchPublish: true,
	}, {
		Name:       b.cfg.Stream + "_DLQ",
		Subjects:   []string{"dlq." + b.cfg.Stream + ".>"},
		Storage:    jetstream.FileStorage,
		Replicas:   b.cfg.Replicas,
		MaxAge:     b.cfg.MaxAge,
		Duplicates: b.cfg.DuplicateWindow,
	}}
	for i, sc := range streams {
		s, err := jsx.CreateStream(ctx, js, sc)
		if err != nil {
			return nil, fmt.Errorf("pubsub: stream %s: %w", sc.Name, err)
		}
		if i == 0 && s.CachedInfo().Config.AllowBatchPublish && !b.cfg.NoBatchPublish {
			if b.fast, err = startFastBatches(nc); err != nil {
				return nil, fmt.Errorf("pubsub: %w", err)
			}
		}
	}
	return b, nil
}

// Conn returns the NATS connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream client.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Config returns the configuration with defaults filled in.
func (b *Bus) Config() Config { return b.cfg }

// DeadLetterSubject returns the subject that group's dead letters are published on.
func (b *Bus) DeadLetterSubject(group string) string {
	if group == "" {
		group = "_ephemeral"
	}
	return "dlq." + b.cfg.Stream + "." + group
}

// Ping checks that the connection is up; use it as a readiness check.
func (b *Bus) Ping(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("pubsub: not connected (%s)", b.nc.Status())
	}
	return nil
}

// Close stops the subscriptions, and flushes and closes the connection if Connect made it.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Stop(ctx))
	}
	if b.fast != nil {
		_ = b.fast.sub.Unsubscribe()
	}
	if b.ownConn {
		errs = append(errs, b.nc.FlushTimeout(5*time.Second))
		b.nc.Close()
	}
	return errors.Join(errs...)
}

// partition returns the key partition of key.
func (b *Bus) partition(key string) int {
	return int(fnv32a(key) % uint32(b.cfg.Partitions))
}

// fnv32a is the 32-bit FNV-1a hash of s (hash/fnv's New32a, without its allocations).
func fnv32a(s string) uint32 {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= prime
	}
	return h
}

// keyToken separates a subject from its key partition.
const keyToken = "._k."

// wireSubject returns the subject a message is published on.
func (b *Bus) wireSubject(m *Message) string {
	if m.Key == "" {
		return m.Subject
	}
	return m.Subject + keyToken + strconv.Itoa(b.partition(m.Key))
}

// logicalSubject strips the key partition from a received subject.
func logicalSubject(s string) string {
	if i := strings.LastIndex(s, keyToken); i >= 0 && strings.IndexByte(s[i+len(keyToken):], '.') < 0 {
		return s[:i]
	}
	return s
}

// Publish publishes msgs asynchronously and waits until JetStream has acknowledged every
// one, republishing those that failed with a transient error (the Nats-Msg-Id makes that
// safe) until ctx ends.
//
// Where the server takes fast batches (nats-server 2.14 and later; the stream is created
// with allow_batched unless Config.NoBatchPublish), a call with several messages, such as
// an outbox relay's batch, publishes them as fast batches of up to 1,000: the server
// acknowledges each batch once, after storing all of it, instead of each message, which
// saves the server and the client an acknowledgement per message. A batch the server
// refuses or does not acknowledge in time is published again one message at a time.
func (b *Bus) Publish(ctx context.Context, msgs ...*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now()
	for _, m := range msgs {
		if m.Subject == "" {
			return errors.New("pubsub: message without subject")
		}
		if m.ID == "" {
			m.ID = nuid.Next()
		}
		if m.Source == "" {
			m.Source = b.cfg.Source
		}
		if m.Time.IsZero() {
			m.Time = now
		}
	}
	pending := msgs
	var w *wireEncoder
	if b.fast != nil && len(pending) >= fastBatchMin {
		var rest []*Message
		w = newWireEncoder(b)
		for len(pending) > 0 {
			chunk := pending[:min(len(pending), fastBatchMax)]
			pending = pending[len(chunk):]
			n, err := b.publishFast(ctx, w, chunk)
			if err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("pubsub: publish: %w", err)
				}
				b.logger.Debug("pubsub: fast batch, publishing one message at a time", slog.Int("messages", len(chunk)-n), slog.String("error", err.Error()))
			}
			rest = append(rest, chunk[n:]...)
		}
		if pending = rest; len(pending) == 0 {
			return nil
		}
	}
	out := make([]*nats.Msg, len(pending))
	for i, m := range pending {
		nm := &nats.Msg{Subject: b.wireSubject(m), Data: m.Data, Header: encodeHeaders(m)}
		if th, ok := w.tracedHeaders(m); ok { // its producer span began in a fast batch
			maps.Copy(nm.Header, th)
		} else if _, ok := m.Headers["traceparent"]; !ok {
			b.inject(ctx, m, nm.Header)
		}
		out[i] = nm
	}
	pause := 20 * time.Millisecond
	for {
		failed, err := b.publishAll(ctx, out)
		if err == nil {
			return nil
		}
		if !jsx.Transient(err) || ctx.Err() != nil {
			return fmt.Errorf("pubsub: publish: %w", err)
		}
		out = failed
		select {
		case <-ctx.Done():
			return fmt.Errorf("pubsub: publish: %w", errors.Join(err, ctx.Err()))
		case <-time.After(pause):
		}
		pause = min(pause*2, time.Second)
	}
}

// wireEncoder puts the messages of one fast batch on the wire one after the other
// through one nats.Msg, one header map and one array of header values: the client
// encodes a message's headers into its write buffer before the next is filled, so a
// message costs none of them. Key partitions' subjects are remembered for the batch.
type wireEncoder struct {
	b        *Bus
	nm       nats.Msg
	vals     []string
	subjects []wireSubject // a few (subject, partition) pairs seen in this batch
	// traced keeps the trace headers of the messages given a producer span here (the bus
	// has a tracer provider), so that a message published again one at a time after a
	// failed batch carries the same span instead of starting another.
	traced map[*Message]nats.Header
}

// wireSubject is a keyed message's subject on the wire.
type wireSubject struct {
	subject string
	part    int
	wire    string
}

// maxWireSubjects bounds what a wireEncoder remembers.
const maxWireSubjects = 64

func newWireEncoder(b *Bus) *wireEncoder {
	return &wireEncoder{b: b, nm: nats.Msg{Header: make(nats.Header, 12)}, vals: make([]string, 0, 12)}
}

// msg returns m as the encoder's nats.Msg, valid until the next call; at is m's ce-time
// (ceTime).
func (w *wireEncoder) msg(ctx context.Context, m *Message, at string) *nats.Msg {
	clear(w.nm.Header)
	w.vals = fillHeaders(w.nm.Header, w.vals, m, at)
	w.nm.Subject, w.nm.Data = w.subject(m), m.Data
	if _, ok := m.Headers["traceparent"]; !ok {
		if w.b.tp == nil {
			w.b.inject(ctx, m, w.nm.Header)
		} else {
			th := make(nats.Header, 2)
			w.b.inject(ctx, m, th)
			if w.traced == nil {
				w.traced = make(map[*Message]nats.Header)
			}
			w.traced[m] = th
			maps.Copy(w.nm.Header, th)
		}
	}
	return &w.nm
}

// tracedHeaders returns the trace headers that msg gave m, if it started a producer
// span for it; w may be nil.
func (w *wireEncoder) tracedHeaders(m *Message) (nats.Header, bool) {
	if w == nil {
		return nil, false
	}
	th, ok := w.traced[m]
	return th, ok
}

// subject returns m's subject on the wire, reusing the string of an earlier message of
// the batch with the same subject and key partition.
func (w *wireEncoder) subject(m *Message) string {
	if m.Key == "" {
		return m.Subject
	}
	p := w.b.partition(m.Key)
	for _, s := range w.subjects {
		if s.part == p && s.subject == m.Subject {
			return s.wire
		}
	}
	wire := m.Subject + keyToken + strconv.Itoa(p)
	if len(w.subjects) < maxWireSubjects {
		w.subjects = append(w.subjects, wireSubject{m.Subject, p, wire})
	}
	return wire
}

// publishAll publishes msgs asynchronously and waits for their acks; it returns the
// messages that failed and the first error.
func (b *Bus) publishAll(ctx context.Context, msgs []*nats.Msg) ([]*nats.Msg, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var failed []*nats.Msg
	var first error
	for i, m := range msgs {
		f, err := b.js.PublishMsgAsync(m) // the Nats-Msg-Id header is set already
		if err != nil {
			if first == nil {
				first = err
			}
			failed = append(failed, msgs[i])
			continue
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if first == nil {
				first = err
			}
			failed = append(failed, f.Msg())
		case <-ctx.Done():
			return append(failed, f.Msg()), ctx.Err()
		}
	}
	return failed, first
}

// inject writes the trace context of ctx into the message headers, in a producer span if
// the bus has a tracer provider.
func (b *Bus) inject(ctx context.Context, m *Message, h nats.Header) {
	if b.tp != nil {
		var span trace.Span
		ctx, span = b.tp.Tracer(observe.ScopeName).Start(ctx, "publish "+m.Subject, trace.WithSpanKind(trace.SpanKindProducer))
		defer span.End()
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	b.prop.Inject(ctx, natsCarrier(h))
}

// redactURL hides the passwords and tokens of NATS URLs (nats://user:pass@host) in
// error messages.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
