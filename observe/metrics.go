package observe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// DefaultBuckets are the duration histogram's bucket upper bounds in seconds, from 100µs
// to 10s.
var DefaultBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics holds the RED metrics of a service's endpoints, labelled by transport, service,
// method and side ("server" or "client"):
//
//	svckit_requests_total              counter: completed calls
//	svckit_request_errors_total        counter: failed calls, with a "kind" label (svcerr kind)
//	svckit_request_duration_seconds    histogram: call duration
//	svckit_requests_in_flight          gauge: calls in progress
//
// Create it with NewMetrics and wrap endpoints with its Middleware. A Metrics is safe for
// concurrent use.
type Metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

// MetricsOption configures NewMetrics.
type MetricsOption func(*metricsConfig)

type metricsConfig struct {
	namespace     string
	buckets       []float64
	nativeFactor  float64
	nativeBuckets uint32
	nativeReset   time.Duration
	constLabels   prometheus.Labels
}

// WithNamespace sets the metric name prefix; the default is "svckit".
func WithNamespace(ns string) MetricsOption {
	return func(c *metricsConfig) { c.namespace = ns }
}

// WithBuckets sets the duration histogram's bucket upper bounds in seconds; the default is
// DefaultBuckets.
func WithBuckets(b []float64) MetricsOption {
	return func(c *metricsConfig) { c.buckets = b }
}

// WithNativeHistograms makes the duration histogram also a Prometheus native histogram with
// the given bucket growth factor (1.1 is a common choice) and at most maxBuckets buckets
// (0: 160). The classic buckets are kept for scrapers that do not negotiate protobuf.
// Observing costs a little more.
func WithNativeHistograms(factor float64, maxBuckets uint32) MetricsOption {
	return func(c *metricsConfig) {
		c.nativeFactor = factor
		if maxBuckets == 0 {
			maxBuckets = 160
		}
		c.nativeBuckets = maxBuckets
		c.nativeReset = time.Hour // past maxBuckets: reset at most hourly, else widen buckets
	}
}

// WithConstLabels adds labels with fixed values to every series, for example the instance
// or the version.
func WithConstLabels(l prometheus.Labels) MetricsOption {
	return func(c *metricsConfig) { c.constLabels = l }
}

var metricLabels = []string{"transport", "service", "method", "side"}

// NewMetrics creates the RED metrics and registers them with reg. Metrics of the same
// names and labels already registered with reg (by an earlier NewMetrics) are reused, so
// servers and clients in one process can each call NewMetrics.
func NewMetrics(reg prometheus.Registerer, opts ...MetricsOption) (*Metrics, error) {
	c := metricsConfig{namespace: "svckit", buckets: DefaultBuckets}
	for _, o := range opts {
		o(&c)
	}
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: c.namespace, Name: "requests_total",
			Help:        "Completed calls per endpoint, transport and side.",
			ConstLabels: c.constLabels,
		}, metricLabels),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: c.namespace, Name: "request_errors_total",
			Help:        "Failed calls per endpoint, transport, side and error kind.",
			ConstLabels: c.constLabels,
		}, append(metricLabels[:len(metricLabels):len(metricLabels)], "kind")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: c.namespace, Name: "request_duration_seconds",
			Help:                            "Call duration in seconds per endpoint, transport and side.",
			ConstLabels:                     c.constLabels,
			Buckets:                         c.buckets,
			NativeHistogramBucketFactor:     c.nativeFactor,
			NativeHistogramMaxBucketNumber:  c.nativeBuckets,
			NativeHistogramMinResetDuration: c.nativeReset,
		}, metricLabels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: c.namespace, Name: "requests_in_flight",
			Help:        "Calls in progress per endpoint, transport and side.",
			ConstLabels: c.constLabels,
		}, metricLabels),
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, m.inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c with reg, or returns the equal collector registered already.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("observe: registering metrics: %w", err)
}

// numKinds is the number of svcerr kinds that get a pre-resolved error counter slot.
const numKinds = int(svcerr.DataLoss) + 1

// counterRef boxes a counter for an atomic.Pointer.
type counterRef struct{ c prometheus.Counter }

// Middleware returns middleware that counts calls, failed calls by kind and calls in
// flight, and observes call durations. The series of an endpoint are resolved when it is
// wrapped; the error counter of a kind on its first failure of that kind.
func (m *Metrics) Middleware() endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		side := "server"
		if info.Client {
			side = "client"
		}
		lv := []string{info.Transport, info.Service, info.Method, side}
		requests := m.requests.WithLabelValues(lv...)
		duration := m.duration.WithLabelValues(lv...)
		inFlight := m.inFlight.WithLabelValues(lv...)
		var errs [numKinds]atomic.Pointer[counterRef]
		errCounter := func(k svcerr.Kind) prometheus.Counter {
			if int(k) >= numKinds {
				return m.errors.WithLabelValues(lv[0], lv[1], lv[2], lv[3], k.String())
			}
			if r := errs[k].Load(); r != nil {
				return r.c
			}
			// Racing first failures resolve the same child; either store is fine.
			r := &counterRef{m.errors.WithLabelValues(lv[0], lv[1], lv[2], lv[3], k.String())}
			errs[k].Store(r)
			return r.c
		}
		return func(ctx context.Context, req any) (any, error) {
			inFlight.Inc()
			start := callStartOr(ctx)
			resp, err := next(ctx, req)
			duration.Observe(time.Since(start).Seconds())
			inFlight.Dec()
			requests.Inc()
			if err != nil {
				errCounter(svcerr.KindOf(err)).Inc()
			}
			return resp, err
		}
	}
}

// NewRegistry returns a Prometheus registry with the Go runtime collector (memory
// statistics plus the runtime/metrics GC and scheduler metrics: GC pauses, scheduling
// latencies, goroutines) and the process collector registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.MetricsGC, collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// MetricsHandler returns an HTTP handler that serves the metrics gathered from g, in the
// OpenMetrics format to scrapers that accept it and in the Prometheus text or protobuf
// format otherwise.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
