package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
)

// callN makes n calls of e from workers goroutines and returns the errors.
func callN(e sum, n, workers int) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	jobs := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				r, err := e(context.Background(), req{A: int64(i), B: 1})
				if err == nil && r.V != int64(i)+1 {
					err = fmt.Errorf("call %d: got %d", i, r.V)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return errs
}

// TestRetryFaultInjection runs real HTTP instances behind a round-robin pool: one healthy,
// one failing every other call, one hanging. Every call still succeeds: a failed or timed
// out attempt is retried on the next instance, and the breaker takes the bad ones out.
func TestRetryFaultInjection(t *testing.T) {
	healthy, flaky, hanging := startHTTP(t), startHTTP(t), startHTTP(t)
	flaky.setFail(everyOther)
	hanging.hang.Store(true)

	breaker := resilience.NewBreaker(resilience.BreakerConfig{OpenFor: 200 * time.Millisecond})
	p := newPool(breaker, map[string]sum{
		healthy.url: httpClient(t, healthy.url),
		flaky.url:   httpClient(t, flaky.url),
		hanging.url: httpClient(t, hanging.url),
	})
	budget := resilience.NewBudget(resilience.BudgetConfig{Ratio: 0.5})
	retry := resilience.Retry(resilience.RetryConfig{
		MaxAttempts: 3,
		// Long enough that a healthy call on a loaded machine is never cut off.
		AttemptTimeout: 250 * time.Millisecond,
		// Before the breaker has taken them out, the bad instances fail a third of first
		// attempts: more than the default 10% budget allows. Real systems size the budget
		// for the failure rate they mean to hide.
		Budget: budget,
	})
	e := p.endpoint(retry, p.pick, breaker.Middleware())

	errs := callN(e, 300, 1)
	allowed, refused := budget.Retries()
	t.Logf("retries allowed %d, refused %d", allowed, refused)
	if len(errs) > 0 {
		t.Fatalf("%d of 300 calls failed; first: %v", len(errs), errs[0])
	}
	t.Logf("hits: healthy %d, flaky %d, hanging %d; hanging circuit %s",
		healthy.hits.Load(), flaky.hits.Load(), hanging.hits.Load(), breaker.State(hanging.url))
	if hanging.hits.Load() == 0 || flaky.hits.Load() == 0 {
		t.Error("the bad instances were never called")
	}
	if hanging.hits.Load() >= 100 {
		t.Errorf("the hanging instance got %d of 300 calls; the breaker should have taken it out", hanging.hits.Load())
	}
}

// TestRetryFlakyGRPC retries over the gRPC transport against one instance that fails the
// first attempt of every tenth request, with the default budget: the successes earn the
// retries.
func TestRetryFlakyGRPC(t *testing.T) {
	in, cc := startGRPC(t)
	in.failFirst = func(r req) bool { return r.A%10 == 0 }
	e := grpcClient(cc, resilience.Retry(resilience.RetryConfig{}))
	if errs := callN(e, 200, 4); len(errs) > 0 {
		t.Fatalf("%d of 200 calls failed; first: %v", len(errs), errs[0])
	}
	if got := in.hits.Load(); got != 220 {
		t.Errorf("server saw %d calls, want 220 (every tenth request failed once and was retried)", got)
	}
}

// TestRetryHangingSingleTarget retries a call that hangs on its only target: the attempt
// timeout ends it and the retry succeeds.
func TestRetryHangingSingleTarget(t *testing.T) {
	in := startHTTP(t)
	var n sync.Map
	in.setFail(nil)
	in.hang.Store(true)
	e := httpClient(t, in.url, resilience.Retry(resilience.RetryConfig{
		AttemptTimeout: 50 * time.Millisecond,
		OnRetry: func(info endpoint.Info, attempt int, err error) {
			n.Store(attempt, svcerr.KindOf(err))
			in.hang.Store(false) // the next attempt gets through
		},
	}))
	r, err := e(context.Background(), req{A: 2, B: 3})
	if err != nil || r.V != 5 {
		t.Fatalf("got %v, %v", r, err)
	}
	if k, _ := n.Load(1); k != svcerr.DeadlineExceeded {
		t.Errorf("first attempt failed with %v, want deadline_exceeded", k)
	}
}

// TestRetryOnlyIdempotentAndRetryable checks what Retry leaves alone.
func TestRetryOnlyIdempotentAndRetryable(t *testing.T) {
	for _, tc := range []struct {
		name       string
		idempotent bool
		err        error
		want       int
	}{
		{"idempotent unavailable", true, errUnavailable, 3},
		{"not idempotent", false, errUnavailable, 1},
		{"not retryable", true, svcerr.New(svcerr.InvalidArgument, "bad"), 1},
		{"internal", true, errors.New("boom"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			info := endpoint.Info{Service: "s", Method: "M", Client: true, Idempotent: tc.idempotent}
			e := endpoint.Wrap(info, func(context.Context, req) (resp, error) { calls++; return resp{}, tc.err },
				resilience.Retry(resilience.RetryConfig{BaseDelay: time.Microsecond}))
			if _, err := e(context.Background(), req{}); !errors.Is(err, tc.err) {
				t.Errorf("err = %v, want %v", err, tc.err)
			}
			if calls != tc.want {
				t.Errorf("%d calls, want %d", calls, tc.want)
			}
		})
	}
}

// TestRetryGivesUpAtDeadline checks that no backoff outlasts the request's deadline.
func TestRetryGivesUpAtDeadline(t *testing.T) {
	calls := 0
	info := endpoint.Info{Service: "s", Method: "M", Client: true, Idempotent: true}
	e := endpoint.Wrap(info, func(context.Context, req) (resp, error) {
		calls++
		return resp{}, svcerr.New(svcerr.ResourceExhausted, "later").WithMeta("retry_after", "30")
	}, resilience.Retry(resilience.RetryConfig{Timeout: time.Second}))
	_, err := e(context.Background(), req{})
	if svcerr.KindOf(err) != svcerr.ResourceExhausted || calls != 1 {
		t.Errorf("err %v after %d calls; want resource_exhausted after 1 (retry_after 30s > deadline)", err, calls)
	}
}

// TestBreakerOpensAndCloses drives one HTTP instance into failure and back: the circuit
// opens, rejects calls without reaching the server, probes after OpenFor and closes.
func TestBreakerOpensAndCloses(t *testing.T) {
	in := startHTTP(t)
	in.setFail(always)
	var mu sync.Mutex
	var changes []string
	b := resilience.NewBreaker(resilience.BreakerConfig{
		ConsecutiveFailures: 3,
		OpenFor:             50 * time.Millisecond,
		HalfOpenProbes:      2,
		OnStateChange: func(key string, from, to resilience.State) {
			mu.Lock()
			changes = append(changes, from.String()+">"+to.String())
			mu.Unlock()
		},
	})
	e := httpClient(t, in.url, b.Middleware())
	key := "sum.Sum" // no instance in the context: one circuit per endpoint

	for i := 0; i < 3; i++ {
		if _, err := e(context.Background(), req{}); svcerr.KindOf(err) != svcerr.Unavailable {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if s := b.State(key); s != resilience.Open {
		t.Fatalf("after 3 failures the circuit is %s, want open", s)
	}
	hits := in.hits.Load()
	_, err := e(context.Background(), req{})
	if e := svcerr.From(err); e.Kind != svcerr.Unavailable || e.Meta["reason"] != "circuit_open" {
		t.Fatalf("call on an open circuit: %v (meta %v)", err, e.Meta)
	}
	if in.hits.Load() != hits {
		t.Fatal("a call on an open circuit reached the server")
	}

	in.setFail(nil) // the instance recovers
	deadline := time.Now().Add(10 * time.Second)
	for b.State(key) != resilience.Closed {
		if time.Now().After(deadline) {
			t.Fatalf("the circuit did not close; state %s", b.State(key))
		}
		_, _ = e(context.Background(), req{})
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := e(context.Background(), req{A: 1}); err != nil {
		t.Fatalf("after closing: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(changes, " "); got != "closed>open open>half-open half-open>closed" {
		t.Errorf("state changes %q", got)
	}
}

// TestBreakerErrorRate opens on the failure rate when failures never come in a row.
func TestBreakerErrorRate(t *testing.T) {
	in := startHTTP(t)
	in.setFail(everyOther)
	b := resilience.NewBreaker(resilience.BreakerConfig{ConsecutiveFailures: -1, MinRequests: 10, OpenFor: time.Hour})
	e := httpClient(t, in.url, b.Middleware())
	for i := 0; i < 10; i++ {
		_, _ = e(context.Background(), req{})
	}
	if s := b.State("sum.Sum"); s != resilience.Open {
		t.Fatalf("after 10 calls at 50%% failures the circuit is %s, want open", s)
	}
	if b.Allow("sum.Sum") {
		t.Error("Allow on an open circuit")
	}
	// Business errors do not count.
	b2 := resilience.NewBreaker(resilience.BreakerConfig{ConsecutiveFailures: 2})
	in.setFail(func(int64) error { return svcerr.New(svcerr.NotFound, "no") })
	e2 := httpClient(t, in.url, b2.Middleware())
	for i := 0; i < 5; i++ {
		_, _ = e2(context.Background(), req{})
	}
	if s := b2.State("sum.Sum"); s != resilience.Closed {
		t.Errorf("not_found errors opened the circuit: %s", s)
	}
}

// TestRetryBudgetUnderOutage measures attempts per request against a real instance that
// fails every call: with the budget they stay at or below 1.1; without it they would be 3.
func TestRetryBudgetUnderOutage(t *testing.T) {
	const requests = 1000
	in := startHTTP(t)
	in.setFail(always)
	budget := resilience.NewBudget(resilience.BudgetConfig{})
	e := httpClient(t, in.url, resilience.Retry(resilience.RetryConfig{
		BaseDelay: 100 * time.Microsecond, MaxDelay: time.Millisecond, Budget: budget,
	}))
	errs := callN(e, requests, 8)
	if len(errs) != requests {
		t.Fatalf("%d of %d calls failed during a total outage", len(errs), requests)
	}
	ratio := float64(in.hits.Load()) / requests
	allowed, refused := budget.Retries()
	t.Logf("total outage: %d requests, %d attempts, %.3f attempts per request (retries allowed %d, refused %d)",
		requests, in.hits.Load(), ratio, allowed, refused)
	if ratio > 1.1 {
		t.Errorf("attempts per request = %.3f, want <= 1.1", ratio)
	}

	// The same outage without a meaningful budget: every request makes 3 attempts.
	in2 := startHTTP(t)
	in2.setFail(always)
	e2 := httpClient(t, in2.url, resilience.Retry(resilience.RetryConfig{
		BaseDelay: time.Microsecond, MaxDelay: time.Microsecond,
		Budget: resilience.NewBudget(resilience.BudgetConfig{MaxTokens: 1e9}),
	}))
	callN(e2, 100, 8)
	if got := in2.hits.Load(); got != 300 {
		t.Errorf("without a budget: %d attempts for 100 requests, want 300", got)
	}
}

// TestRateLimitHTTPAndGRPC checks 429 with Retry-After over HTTP and RESOURCE_EXHAUSTED
// with retry_after over gRPC.
func TestRateLimitHTTPAndGRPC(t *testing.T) {
	lim := resilience.RateLimit(resilience.RateLimitConfig{Rate: 0.5, Burst: 2})
	in := startHTTP(t, lim)
	for i, want := range []int{200, 200, 429} {
		r, err := http.NewRequest(http.MethodPut, in.url+"/sum", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d: %s", i, res.StatusCode, want, body)
		}
		if want == 429 && (res.Header.Get("Retry-After") != "2" || !strings.Contains(string(body), `"resource_exhausted"`)) {
			t.Errorf("429 without Retry-After 2 or kind: %v %s", res.Header, body)
		}
	}

	_, cc := startGRPC(t, resilience.RateLimit(resilience.RateLimitConfig{Rate: 0.5, Burst: 1}))
	e := grpcClient(cc)
	if _, err := e(context.Background(), req{}); err != nil {
		t.Fatal(err)
	}
	_, err := e(context.Background(), req{})
	if se := svcerr.From(err); se.Kind != svcerr.ResourceExhausted || se.Meta["retry_after"] != "2" {
		t.Errorf("over the limit: %v, meta %v", err, se.Meta)
	}
}

// TestRateLimitKeysAndBound checks per-key limiting and that the map of limiters stays
// bounded: a dropped key starts afresh.
func TestRateLimitKeysAndBound(t *testing.T) {
	var key string
	mw := resilience.RateLimit(resilience.RateLimitConfig{
		Rate: 0.001, Burst: 1, MaxKeys: 2,
		Key: func(context.Context) string { return key },
	})
	info := endpoint.Info{Service: "s", Method: "M"}
	e := endpoint.Wrap(info, func(context.Context, req) (resp, error) { return resp{}, nil }, mw)
	try := func(k string) bool { key = k; _, err := e(context.Background(), req{}); return err == nil }
	for _, step := range []struct {
		key  string
		want bool
	}{
		{"a", true}, {"a", false}, {"b", true}, {"b", false}, {"", true}, {"", true},
		{"c", true}, // drops a, the least recently used
		{"a", true}, {"c", false},
	} {
		if got := try(step.key); got != step.want {
			t.Errorf("key %q: allowed %v, want %v", step.key, got, step.want)
		}
	}
}

// TestConcurrencyLimitSheds fills the limit with calls that block and checks that the next
// call gets 503 with Retry-After at once rather than waiting.
func TestConcurrencyLimitSheds(t *testing.T) {
	in := startHTTP(t, resilience.ConcurrencyLimit(2, 0))
	in.hang.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	e := httpClient(t, in.url)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = e(ctx, req{}) })
	}
	for in.hits.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	r, _ := http.NewRequest(http.MethodPut, in.url+"/sum", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != "1" {
		t.Errorf("over the limit: status %d, Retry-After %q; want 503 and 1", res.StatusCode, res.Header.Get("Retry-After"))
	}
	cancel()
	wg.Wait()
	in.hang.Store(false)
	// The slots free up once the server sees the canceled callers' requests end, which
	// happens after the callers return; then a call gets through again.
	e2 := httpClient(t, in.url)
	var err2 error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err2 = e2(context.Background(), req{}); err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Errorf("after the slots were released: %v", err2)
	}
}

// TestConcurrencyLimitWait checks the bounded wait: a call waits for a slot while one
// frees up in time, and fails once the wait is over.
func TestConcurrencyLimitWait(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wait    time.Duration
		release bool
		want    svcerr.Kind
	}{
		{"slot freed while waiting", time.Minute, true, svcerr.Unknown},
		{"wait over", time.Millisecond, false, svcerr.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hold, entered := make(chan struct{}), make(chan struct{}, 2)
			info := endpoint.Info{Service: "s", Method: "M"}
			e := endpoint.Wrap(info, func(ctx context.Context, r req) (resp, error) {
				entered <- struct{}{}
				if r.A == 1 {
					<-hold
				}
				return resp{}, nil
			}, resilience.ConcurrencyLimit(1, tc.wait))
			done := make(chan struct{})
			go func() { _, _ = e(context.Background(), req{A: 1}); close(done) }()
			<-entered
			if tc.release {
				go func() { time.Sleep(10 * time.Millisecond); close(hold) }()
			}
			_, err := e(context.Background(), req{})
			if got := svcerr.KindOf(err); got != tc.want {
				t.Errorf("kind %v (%v), want %v", got, err, tc.want)
			}
			if !tc.release {
				close(hold)
			}
			<-done
		})
	}
}

// TestConcurrencyLimitGRPC checks that shed calls fail with UNAVAILABLE and retry_after
// over gRPC.
func TestConcurrencyLimitGRPC(t *testing.T) {
	in, cc := startGRPC(t, resilience.ConcurrencyLimit(1, 0))
	in.hang.Store(true)
	e := grpcClient(cc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _, _ = e(ctx, req{}); close(done) }()
	for in.hits.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	_, err := e(context.Background(), req{})
	if se := svcerr.From(err); se.Kind != svcerr.Unavailable || se.Meta["retry_after"] != "1" {
		t.Errorf("over the limit: %v, meta %v; want unavailable with retry_after 1", err, se.Meta)
	}
	cancel()
	<-done
}
