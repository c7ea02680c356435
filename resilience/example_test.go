package resilience_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
)

func ExampleRecover() {
	// A JSON logger as in production, without the time and the stack, which change from
	// run to run.
	logger := slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "stack" {
				return slog.Attr{}
			}
			return a
		},
	}))
	lookup := func(_ context.Context, id int) (string, error) {
		names := []string{"ada", "grace"}
		return names[id], nil // panics for an unknown id
	}
	info := endpoint.Info{Service: "users", Method: "Name", Transport: "http"}
	e := endpoint.Wrap(info, lookup, resilience.Recover(logger))

	_, err := e(context.Background(), 5)
	fmt.Println(svcerr.KindOf(err), svcerr.From(err).Message)
	name, err := e(context.Background(), 1)
	fmt.Println(name, err)
	// Output:
	// {"level":"ERROR","msg":"panic in endpoint","service":"users","method":"Name","transport":"http","panic":"runtime error: index out of range [5] with length 2"}
	// internal internal error
	// grace <nil>
}

func ExampleTimeout() {
	// slow honours its context, as every endpoint should.
	slow := func(ctx context.Context, _ struct{}) (string, error) {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Minute):
			return "done", nil
		}
	}
	info := endpoint.Info{Service: "report", Method: "Build"}
	e := endpoint.Wrap(info, slow, resilience.Timeout(10*time.Millisecond))

	_, err := e(context.Background(), struct{}{})
	fmt.Println(svcerr.KindOf(err))
	fmt.Println(svcerr.From(err).Message) // what callers see
	fmt.Println(err)                      // what the logs see
	// Output:
	// deadline_exceeded
	// report.Build timed out after 10ms
	// deadline_exceeded: report.Build timed out after 10ms: context deadline exceeded
}

func ExampleRetry() {
	// flaky fails twice with a retryable kind, then succeeds.
	calls := 0
	flaky := func(context.Context, string) (string, error) {
		calls++
		if calls < 3 {
			return "", svcerr.New(svcerr.Unavailable, "instance restarting")
		}
		return "ok", nil
	}
	info := endpoint.Info{Service: "users", Method: "Get", Client: true, Idempotent: true}
	e := endpoint.Wrap(info, flaky, resilience.Retry(resilience.RetryConfig{
		MaxAttempts:    3,
		BaseDelay:      time.Millisecond,
		AttemptTimeout: time.Second,
		// Share one budget between all endpoints of a client: at most ~10% extra load.
		Budget: resilience.NewBudget(resilience.BudgetConfig{Ratio: 0.1}),
	}))
	v, err := e(context.Background(), "ada")
	fmt.Println(v, err, calls)
	// Output:
	// ok <nil> 3
}

func ExampleBreaker() {
	b := resilience.NewBreaker(resilience.BreakerConfig{ConsecutiveFailures: 2, OpenFor: time.Minute})
	down := func(context.Context, string) (string, error) { return "", svcerr.New(svcerr.Unavailable, "down") }
	info := endpoint.Info{Service: "users", Method: "Get", Client: true}
	e := endpoint.Wrap(info, down, b.Middleware())

	// The balancer names the instance of each call; the breaker keeps a circuit for it.
	ctx := resilience.WithInstance(context.Background(), "10.0.0.7:8080")
	for range 3 {
		_, err := e(ctx, "ada")
		fmt.Println(err)
	}
	fmt.Println(b.State("10.0.0.7:8080"), b.Allow("10.0.0.8:8080"))
	// Output:
	// unavailable: down
	// unavailable: down
	// unavailable: circuit breaker open for 10.0.0.7:8080
	// open true
}

func ExampleRateLimit() {
	limit := resilience.RateLimit(resilience.RateLimitConfig{
		Rate: 1, Burst: 2,
		// The default key is the authenticated subject, else the caller's IP address.
		Key: func(ctx context.Context) string { return "tenant-a" },
	})
	ok := func(context.Context, string) (string, error) { return "ok", nil }
	e := endpoint.Wrap(endpoint.Info{Service: "users", Method: "Get"}, ok, limit)
	for range 3 {
		v, err := e(context.Background(), "ada")
		if err != nil {
			fmt.Println(err, "retry after", svcerr.From(err).Meta["retry_after"], "s")
			continue
		}
		fmt.Println(v)
	}
	// Output:
	// ok
	// ok
	// resource_exhausted: rate limit exceeded retry after 1 s
}

func ExampleConcurrencyLimit() {
	// At most 100 calls at once on this server; the 101st gets 503 / UNAVAILABLE with
	// Retry-After at once, or after waiting up to 10ms for a slot.
	mw := resilience.ConcurrencyLimit(100, 10*time.Millisecond)
	ok := func(context.Context, string) (string, error) { return "ok", nil }
	e := endpoint.Wrap(endpoint.Info{Service: "users", Method: "Get"}, ok, mw)
	fmt.Println(e(context.Background(), "ada"))
	// Output:
	// ok <nil>
}
