package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/observe"
)

// Logging logs each handled message: at debug level when the handler succeeded, at warn
// level with the error when it failed. A record the logger would drop (debug records
// under the usual info level) costs neither its attributes nor a clock read.
func Logging(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) error {
			start := time.Now()
			err := next(ctx, msg)
			level := slog.LevelDebug
			if err != nil {
				level = slog.LevelWarn
			}
			if !logger.Enabled(ctx, level) {
				return err
			}
			attrs := []slog.Attr{
				slog.String("subject", msg.Subject), slog.String("id", msg.ID),
				slog.String("group", msg.Group), slog.Int("attempt", msg.Attempt),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			}
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			logger.LogAttrs(ctx, level, "message handled", attrs...)
			return err
		}
	}
}

// Metrics counts handled messages and times handlers.
type Metrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers svckit_pubsub_handled_total{subject, group, outcome} (outcome ok
// or error) and svckit_pubsub_handle_seconds{subject, group} with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "svckit", Subsystem: "pubsub", Name: "handled_total",
			Help: "Messages handled, by subject, consumer group and outcome.",
		}, []string{"subject", "group", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "svckit", Subsystem: "pubsub", Name: "handle_seconds",
			Help:    "Time handlers took, by subject and consumer group.",
			Buckets: prometheus.DefBuckets,
		}, []string{"subject", "group"}),
	}
	for _, c := range []prometheus.Collector{m.handled, m.duration} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("pubsub: metrics: %w", err)
			}
			switch c.(type) {
			case *prometheus.CounterVec:
				m.handled = are.ExistingCollector.(*prometheus.CounterVec)
			case *prometheus.HistogramVec:
				m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
			}
		}
	}
	return m, nil
}

// Counter returns the handled-messages counter of subject, group and outcome ("ok" or
// "error").
func (m *Metrics) Counter(subject, group, outcome string) (prometheus.Counter, error) {
	return m.handled.GetMetricWithLabelValues(subject, group, outcome)
}

// Middleware returns the metrics middleware.
func (m *Metrics) Middleware() Middleware {
	return func(next Handler) Handler {
		var cache seriesCache
		return func(ctx context.Context, msg *Message) error {
			start := time.Now()
			err := next(ctx, msg)
			if err != nil { // rare: asked of the vectors, so each series appears with its first use
				m.handled.WithLabelValues(msg.Subject, msg.Group, "error").Inc()
				m.duration.WithLabelValues(msg.Subject, msg.Group).Observe(time.Since(start).Seconds())
				return err
			}
			ser := cache.get(m, msg.Subject, msg.Group)
			ser.ok.Inc()
			ser.duration.Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// series are the metrics of one subject and group that a successfully handled message
// updates.
type series struct {
	ok       prometheus.Counter
	duration prometheus.Observer
}

// seriesKey names the series of a subject and group.
type seriesKey struct{ subject, group string }

// seriesCache keeps the series of the subjects and groups a handler has seen, so that a
// message costs a map lookup instead of hashing its label values into the vectors twice. The map is replaced, never changed, when a pair is added: lookups take no lock.
// Pairs are few (a handler's subjects are those of one subscription), and the cache keeps
// at most maxSeries of them; beyond that the vectors are asked each time.
type seriesCache struct {
	mu sync.Mutex
	m  atomic.Pointer[map[seriesKey]*series]
}

// maxSeries bounds a seriesCache (a wildcard subscription on subjects without end).
const maxSeries = 256

func (c *seriesCache) get(m *Metrics, subject, group string) *series {
	k := seriesKey{subject, group}
	if p := c.m.Load(); p != nil {
		if s, ok := (*p)[k]; ok {
			return s
		}
	}
	s := &series{
		ok:       m.handled.WithLabelValues(subject, group, "ok"),
		duration: m.duration.WithLabelValues(subject, group),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[seriesKey]*series
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if len(old) < maxSeries {
		next := make(map[seriesKey]*series, len(old)+1)
		maps.Copy(next, old)
		next[k] = s
		c.m.Store(&next)
	}
	return s
}

// Tracing starts a consumer span "process <subject>" per message. Its parent is the
// producer's span, whose context the subscriber extracted from the message headers. A
// nil tp disables tracing.
func Tracing(tp trace.TracerProvider) Middleware {
	if tp == nil {
		return func(next Handler) Handler { return next }
	}
	tracer := tp.Tracer(observe.ScopeName)
	fast, _ := tracer.(spanStarter)
	// The arrays the span attributes are built in: StartSpan copies them into the span.
	attrPool := &sync.Pool{New: func() any { return new([5]attribute.KeyValue) }}
	return func(next Handler) Handler {
		var names spanNames
		return func(ctx context.Context, msg *Message) error {
			name := names.get(msg.Subject)
			var span trace.Span
			if fast != nil {
				a := attrPool.Get().(*[5]attribute.KeyValue)
				ctx, span = fast.StartSpan(ctx, name, trace.SpanKindConsumer, messageAttrs(a, msg))
				attrPool.Put(a)
			} else {
				ctx, span = tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer))
				if span.IsRecording() {
					var a [5]attribute.KeyValue
					span.SetAttributes(messageAttrs(&a, msg)...)
				}
			}
			err := next(ctx, msg)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
			return err
		}
	}
}

// spanStarter is implemented by the tracers of svckit's lean OTLP provider
// (observe/otlp): a span of a kind with attributes set after sampling, as Start with
// trace.WithSpanKind followed by SetAttributes, without building a trace.SpanConfig.
type spanStarter interface {
	StartSpan(ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue) (context.Context, trace.Span)
}

// messageAttrs fills a with the messaging attributes of msg's span.
func messageAttrs(a *[5]attribute.KeyValue, msg *Message) []attribute.KeyValue {
	a[0] = attribute.String("messaging.system", "nats")
	a[1] = attribute.String("messaging.destination.name", msg.Subject)
	a[2] = attribute.String("messaging.message.id", msg.ID)
	a[3] = attribute.String("messaging.consumer.group.name", msg.Group)
	a[4] = attribute.String("messaging.delivery.attempt", strconv.Itoa(msg.Attempt))
	return a[:]
}

// spanNames keeps the span name of each subject a handler has seen ("process " +
// subject), built once instead of per message; like seriesCache, copied on write and
// bounded.
type spanNames struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]string]
}

func (c *spanNames) get(subject string) string {
	if p := c.m.Load(); p != nil {
		if n, ok := (*p)[subject]; ok {
			return n
		}
	}
	name := "process " + subject
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]string
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if len(old) < maxSeries {
		next := make(map[string]string, len(old)+1)
		maps.Copy(next, old)
		next[subject] = name
		c.m.Store(&next)
	}
	return name
}

// Recover turns a handler panic into an error, logged with its stack, so the message is
// retried like any failure.
func Recover(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					logger.ErrorContext(ctx, "message handler panicked", slog.String("subject", msg.Subject),
						slog.String("id", msg.ID), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
					err = fmt.Errorf("pubsub: handler panicked: %v", r)
				}
			}()
			return next(ctx, msg)
		}
	}
}

// Timeout gives each handler call at most d; a handler that runs out of time should
// return ctx.Err(), and the message is retried.
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		if d <= 0 {
			return next
		}
		return func(ctx context.Context, msg *Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, msg)
		}
	}
}

// Default returns the recommended middleware, outermost first: tracing, logging,
// metrics (when m is not nil), recovery, and a timeout of d.
func Default(logger *slog.Logger, tp trace.TracerProvider, m *Metrics, d time.Duration) []Middleware {
	mws := []Middleware{Tracing(tp), Logging(logger)}
	if m != nil {
		mws = append(mws, m.Middleware())
	}
	return append(mws, Recover(logger), Timeout(d))
}
