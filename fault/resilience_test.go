package fault_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

// TestFaultsAgainstResilience shows what svckit's client resilience does under each kind of
// fault, with a real HTTP server whose endpoint gets the fault and a client with Retry
// (3 attempts) and a per-endpoint Breaker; the figures are logged (docs/resilience.md
// quotes them) and the behaviour each case is about is checked.
func TestFaultsAgainstResilience(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rule    fault.Rule
		n       int
		budget  resilience.BudgetConfig
		breaker resilience.BreakerConfig
		retry   resilience.RetryConfig
		check   func(t *testing.T, r outcome)
	}{
		{
			name: "20% unavailable, default budget", n: 500,
			rule:    fault.Rule{Method: "sum.Sum", AbortPercent: 20, Kind: svcerr.Unavailable},
			breaker: resilience.BreakerConfig{ConsecutiveFailures: 50}, // the budget alone
			check: func(t *testing.T, r outcome) {
				// A 10% budget cannot hide a 20% failure rate: it refuses retries.
				if r.refused == 0 || r.failed == 0 {
					t.Errorf("the budget refused %d retries and %d requests failed; want both > 0", r.refused, r.failed)
				}
			},
		},
		{
			name: "100% unavailable, default breaker", n: 200,
			rule: fault.Rule{Method: "sum.Sum", AbortPercent: 100, Kind: svcerr.Unavailable},
			check: func(t *testing.T, r outcome) {
				// Five failures in a row open the circuit; later calls fail at once without
				// reaching the server.
				if r.opened == 0 || r.failed != r.n || r.injected > 10 || r.rejected < r.n-10 {
					t.Errorf("want the circuit open after 5 failures and the rest rejected by it")
				}
			},
		},
		{
			name: "20% internal (not retryable)", n: 500,
			rule:    fault.Rule{Method: "sum.Sum", AbortPercent: 20, Kind: svcerr.Internal},
			breaker: resilience.BreakerConfig{ConsecutiveFailures: 50},
			check: func(t *testing.T, r outcome) {
				if r.retries != 0 || float64(r.failed) != r.injected {
					t.Errorf("want no retries and every fault a failed request")
				}
			},
		},
		{
			name: "20% delayed 100ms, 20ms attempt timeout", n: 200,
			rule:    fault.Rule{Method: "sum.Sum", Delay: 100 * time.Millisecond, DelayPercent: 20},
			budget:  resilience.BudgetConfig{Ratio: 1},
			breaker: resilience.BreakerConfig{ConsecutiveFailures: 50, MinRequests: 1000},
			retry:   resilience.RetryConfig{AttemptTimeout: 20 * time.Millisecond},
			check: func(t *testing.T, r outcome) {
				// A slow attempt costs its timeout, not the delay, and is retried.
				if r.retries == 0 || r.failed > r.n/10 || r.slowest > 500*time.Millisecond {
					t.Errorf("want delayed attempts cut at 20ms and retried")
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runAgainst(t, tc.rule, tc.n, tc.budget, tc.breaker, tc.retry)
			t.Logf("%d requests: %d failed (%d rejected by the open circuit), %d retries (budget refused %d), %.0f faults injected, circuit opened %d times, slowest request %s",
				r.n, r.failed, r.rejected, r.retries, r.refused, r.injected, r.opened, r.slowest.Round(time.Millisecond))
			tc.check(t, r)
		})
	}
}

type outcome struct {
	n, failed, rejected int
	retries             int64
	refused             uint64
	opened              int64
	injected            float64
	slowest             time.Duration
}

// runAgainst makes n requests one after the other to a server whose Sum gets rule's
// faults, through Retry (fast backoff) and a Breaker, and returns what happened.
func runAgainst(t *testing.T, rule fault.Rule, n int, bc resilience.BudgetConfig, brc resilience.BreakerConfig, rc resilience.RetryConfig) outcome {
	t.Helper()
	inj := fault.New()
	if err := inj.Set(rule); err != nil {
		t.Fatal(err)
	}
	e := &echo{}
	s := shttp.NewServer("sum", shttp.WithMiddleware(inj.Middleware()))
	shttp.Handle(s, "PUT /sum", "Sum", e.call)
	srv := httptest.NewServer(s)
	defer srv.Close()
	var retries, opened atomic.Int64
	brc.OnStateChange = func(_ string, _, to resilience.State) {
		if to == resilience.Open {
			opened.Add(1)
		}
	}
	budget := resilience.NewBudget(bc)
	rc.BaseDelay, rc.MaxDelay, rc.Budget = time.Millisecond, 5*time.Millisecond, budget
	rc.OnRetry = func(endpoint.Info, int, error) { retries.Add(1) }
	c, err := shttp.NewClient(srv.URL, "sum", shttp.WithClientMiddleware(
		resilience.Retry(rc), resilience.NewBreaker(brc).Middleware()))
	if err != nil {
		t.Fatal(err)
	}
	sum := shttp.Call[req, resp](c, "PUT /sum", "Sum")
	r := outcome{n: n}
	for i := range n {
		start := time.Now()
		_, err := sum(context.Background(), req{A: int64(i)})
		r.slowest = max(r.slowest, time.Since(start))
		if err != nil {
			r.failed++
			if svcerr.From(err).Meta["reason"] == "circuit_open" {
				r.rejected++
			}
		}
	}
	r.retries, r.opened = retries.Load(), opened.Load()
	_, r.refused = budget.Retries()
	for k, v := range counts(t, inj) {
		if k != "sum.Sum/delay" {
			r.injected += v
		}
	}
	return r
}
