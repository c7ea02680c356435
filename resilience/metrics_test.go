package resilience_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/resilience"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := resilience.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	budget := resilience.NewBudget(resilience.BudgetConfig{MaxTokens: 1, MinPerSecond: -1})
	if err := m.WatchBudget("sum", budget); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchBudget("sum", budget); err == nil {
		t.Error("watching a budget twice: no error")
	}
	breaker := resilience.NewBreaker(resilience.BreakerConfig{ConsecutiveFailures: 2, OnStateChange: m.OnStateChange})
	in := startHTTP(t)
	in.setFail(always)
	e := httpClient(t, in.url, resilience.Retry(resilience.RetryConfig{Budget: budget, OnRetry: m.OnRetry}), breaker.Middleware())
	for range 2 {
		_, _ = e(context.Background(), req{})
	}
	got := gather(t, reg)
	for series, want := range map[string]float64{
		`svckit_breaker_state{key="sum.Sum"}`:                                        1,
		`svckit_breaker_transitions_total{key="sum.Sum",to="open"}`:                  1,
		`svckit_client_retries_total{kind="unavailable",method="Sum",service="sum"}`: 1,
		`svckit_retry_budget_retries_total{budget="sum",result="allowed"}`:           1,
		`svckit_retry_budget_retries_total{budget="sum",result="refused"}`:           1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// gather returns the registry's series as "name{label="value",…}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return out
}
