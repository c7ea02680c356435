package resilience

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// Metrics exports what the client-side middleware does as Prometheus metrics. Plug its
// methods into the hooks:
//
//	m, _ := resilience.NewMetrics(app.Registry())
//	budget := resilience.NewBudget(resilience.BudgetConfig{})
//	m.WatchBudget("orders", budget)
//	retry := resilience.Retry(resilience.RetryConfig{Budget: budget, OnRetry: m.OnRetry})
//	breaker := resilience.NewBreaker(resilience.BreakerConfig{OnStateChange: m.OnStateChange})
//
// The series:
//
//	svckit_client_retries_total{service, method, kind}   retries made, by the kind of the failed attempt
//	svckit_retry_budget_retries_total{budget, result}   retries the budget allowed or refused
//	svckit_breaker_state{key}                           0 closed, 1 open, 2 half-open
//	svckit_breaker_transitions_total{key, to}           state changes
//
// Server-side rejections need no metrics of their own: they are errors of kind
// resource_exhausted (rate limit) and unavailable (overload) in the request metrics.
type Metrics struct {
	reg         prometheus.Registerer
	retries     *prometheus.CounterVec
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "svckit", Name: "client_retries_total",
			Help: "Retries made by client endpoints, by the kind of the failed attempt.",
		}, []string{"service", "method", "kind"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "svckit", Name: "breaker_state",
			Help: "State of a circuit breaker: 0 closed, 1 open, 2 half-open.",
		}, []string{"key"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "svckit", Name: "breaker_transitions_total",
			Help: "State changes of circuit breakers, by the new state.",
		}, []string{"key", "to"}),
	}
	for _, c := range []prometheus.Collector{m.retries, m.state, m.transitions} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("resilience: metrics: %w", err)
		}
	}
	return m, nil
}

// OnRetry counts a retry; it fits RetryConfig.OnRetry.
func (m *Metrics) OnRetry(info endpoint.Info, _ int, err error) {
	m.retries.WithLabelValues(info.Service, info.Method, svcerr.KindOf(err).String()).Inc()
}

// OnStateChange records a breaker state change; it fits BreakerConfig.OnStateChange.
func (m *Metrics) OnStateChange(key string, _, to State) {
	m.state.WithLabelValues(key).Set(float64(to))
	m.transitions.WithLabelValues(key, to.String()).Inc()
}

// WatchBudget exports the retries budget b has allowed and refused, labelled budget=name.
func (m *Metrics) WatchBudget(name string, b *Budget) error {
	for _, result := range []string{"allowed", "refused"} {
		c := prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "svckit", Name: "retry_budget_retries_total",
			Help:        "Retries a retry budget allowed or refused.",
			ConstLabels: prometheus.Labels{"budget": name, "result": result},
		}, func() float64 {
			allowed, refused := b.Retries()
			if result == "allowed" {
				return float64(allowed)
			}
			return float64(refused)
		})
		if err := m.reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("resilience: budget %q is watched already", name)
			}
			return fmt.Errorf("resilience: metrics: %w", err)
		}
	}
	return nil
}
