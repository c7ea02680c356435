package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/observe"
)

// Logging logs each handled message: at debug level when the handler succeeded, at warn
// level with the error when it failed.
func Logging(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) error {
			start := time.Now()
			err := next(ctx, msg)
			level := slog.LevelDebug
			attrs := []slog.Attr{
				slog.String("subject", msg.Subject), slog.String("id", msg.ID),
				slog.String("group", msg.Group), slog.Int("attempt", msg.Attempt),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			}
			if err != nil {
				level = slog.LevelWarn
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
		return func(ctx context.Context, msg *Message) error {
			start := time.Now()
			err := next(ctx, msg)
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			m.handled.WithLabelValues(msg.Subject, msg.Group, outcome).Inc()
			m.duration.WithLabelValues(msg.Subject, msg.Group).Observe(time.Since(start).Seconds())
			return err
		}
	}
}

// Tracing starts a consumer span "process <subject>" per message. Its parent is the
// producer's span, whose context the subscriber extracted from the message headers. A
// nil tp disables tracing.
func Tracing(tp trace.TracerProvider) Middleware {
	if tp == nil {
		return func(next Handler) Handler { return next }
	}
	tracer := tp.Tracer(observe.ScopeName)
	return func(next Handler) Handler {
		return func(ctx context.Context, msg *Message) error {
			ctx, span := tracer.Start(ctx, "process "+msg.Subject, trace.WithSpanKind(trace.SpanKindConsumer))
			if span.IsRecording() {
				span.SetAttributes(
					attribute.String("messaging.system", "nats"),
					attribute.String("messaging.destination.name", msg.Subject),
					attribute.String("messaging.message.id", msg.ID),
					attribute.String("messaging.consumer.group.name", msg.Group),
					attribute.String("messaging.delivery.attempt", strconv.Itoa(msg.Attempt)),
				)
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
