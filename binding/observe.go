package binding

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// observer logs and counts what the bindings of one Set do.
type observer struct {
	log      *slog.Logger
	events   *prometheus.CounterVec
	invokes  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newObserver(log *slog.Logger, reg prometheus.Registerer) (*observer, error) {
	o := &observer{log: log}
	if reg == nil {
		return o, nil
	}
	o.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "svckit", Subsystem: "binding", Name: "events_total",
		Help: "Events of input bindings, by binding and outcome (ok, error, rejected).",
	}, []string{"binding", "outcome"})
	o.invokes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "svckit", Subsystem: "binding", Name: "invocations_total",
		Help: "Invocations of output bindings, by binding and outcome (ok or the error kind).",
	}, []string{"binding", "outcome"})
	o.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "svckit", Subsystem: "binding", Name: "invoke_seconds",
		Help: "Time output bindings took, by binding.", Buckets: prometheus.DefBuckets,
	}, []string{"binding"})
	var err error
	if o.events, err = register(reg, o.events); err != nil {
		return nil, err
	}
	if o.invokes, err = register(reg, o.invokes); err != nil {
		return nil, err
	}
	if o.duration, err = register(reg, o.duration); err != nil {
		return nil, err
	}
	return o, nil
}

// register registers c, or returns the collector registered before it.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(C); ok {
				return old, nil
			}
		}
		return c, fmt.Errorf("binding: metrics: %w", err)
	}
	return c, nil
}

// handle calls h for e, recovering a panic, and logs and counts the outcome.
func (o *observer) handle(ctx context.Context, h Handler, e Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			o.log.ErrorContext(ctx, "binding: handler panicked", "binding", e.Binding, "id", e.ID,
				"panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("binding %s: handler panicked: %v", e.Binding, r)
		}
		outcome := "ok"
		if err != nil {
			outcome = "error"
			o.log.WarnContext(ctx, "binding: event failed", "binding", e.Binding, "id", e.ID,
				"subject", e.Subject, "attempt", e.Attempt, "retry", Retryable(err), "err", err)
		}
		o.count(e.Binding, outcome)
	}()
	return h(ctx, e)
}

// rejected logs and counts an input's refusal of something that never became an event.
func (o *observer) rejected(ctx context.Context, binding, why string, err error, args ...any) {
	o.log.WarnContext(ctx, "binding: rejected", append([]any{"binding", binding, "reason", why, "err", err}, args...)...)
	o.count(binding, "rejected")
}

func (o *observer) count(binding, outcome string) {
	if o.events != nil {
		o.events.WithLabelValues(binding, outcome).Inc()
	}
}

// observedOutput logs and counts the invocations of an Output.
type observedOutput struct {
	Output
	o *observer
}

// Invoke implements Output.
func (w observedOutput) Invoke(ctx context.Context, r Request) (Response, error) {
	start := time.Now()
	resp, err := w.Output.Invoke(ctx, r)
	outcome := "ok"
	if err != nil {
		outcome = kindOf(err)
		w.o.log.WarnContext(ctx, "binding: invocation failed", "binding", w.Name(), "id", r.Metadata[MetaID], "err", err)
	}
	if w.o.invokes != nil {
		w.o.invokes.WithLabelValues(w.Name(), outcome).Inc()
		w.o.duration.WithLabelValues(w.Name()).Observe(time.Since(start).Seconds())
	}
	return resp, err
}
