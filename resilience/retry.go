package resilience

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// RetryConfig configures [Retry]. The zero value gives the defaults named below.
type RetryConfig struct {
	// MaxAttempts bounds the calls made for one request, the first included. Default 3;
	// 1 turns retries off.
	MaxAttempts int
	// BaseDelay and MaxDelay shape the backoff: before retry n (n = 1, 2, …) Retry sleeps
	// a random time in [0, min(MaxDelay, BaseDelay·2^(n-1))) — exponential backoff with
	// full jitter. Defaults 20ms and 1s.
	BaseDelay, MaxDelay time.Duration
	// AttemptTimeout bounds each attempt, so that a hanging instance costs one attempt
	// rather than the whole request. 0 (the default) leaves attempts bounded by the
	// caller's deadline only.
	AttemptTimeout time.Duration
	// Timeout bounds the request as a whole, all attempts and backoff included. 0 (the
	// default) uses the caller's deadline only. Retry never starts a backoff that would end
	// after the deadline.
	Timeout time.Duration
	// Budget limits retries to a fraction of the traffic, so that an outage cannot turn into
	// a retry storm. Share one Budget between the middleware of all endpoints that call
	// the same service. nil gives each Retry middleware value its own NewBudget(BudgetConfig{}):
	// at most 10% extra load.
	Budget *Budget
	// Retryable reports whether a failed attempt may be retried. The default is
	// [DefaultRetryable].
	Retryable func(error) bool
	// RetryNonIdempotent retries methods that are not marked idempotent too. Off by
	// default: a call that failed may have taken effect, and repeating it would repeat
	// the effect.
	RetryNonIdempotent bool
	// OnRetry, if set, is called before each retry, with the number of the attempt that
	// failed and its error; use it for metrics or logs.
	OnRetry func(info endpoint.Info, attempt int, err error)
}

func (c *RetryConfig) setDefaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = 20 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = time.Second
	}
	if c.MaxDelay < c.BaseDelay {
		c.MaxDelay = c.BaseDelay
	}
	if c.Budget == nil {
		c.Budget = NewBudget(BudgetConfig{})
	}
	if c.Retryable == nil {
		c.Retryable = DefaultRetryable
	}
}

// DefaultRetryable reports whether err is worth another attempt: its kind is one for
// which svcerr.Kind.Retryable is true (unavailable, resource_exhausted, aborted and
// deadline_exceeded — an attempt that timed out while the request's own deadline had not
// passed), and it is not a rejection by the open per-endpoint circuit of a [Breaker],
// which would only reject the retry too. (A rejection by an instance's circuit is retried:
// the next attempt may go to another instance.)
func DefaultRetryable(err error) bool {
	e := svcerr.From(err)
	return e.Kind.Retryable() && (e.Meta["reason"] != "circuit_open" || e.Meta["circuit"] != "endpoint")
}

// Retry is client-side middleware that repeats a failed call of an idempotent method
// (endpoint.Info.Idempotent) while the error is retryable, attempts remain, the deadline
// allows and the retry budget has a token. Between attempts it sleeps with exponential
// backoff and full jitter, or as long as the server asked in a retry_after error
// metadata entry (seconds; the transports fill it from Retry-After and gRPC error
// details) if that is longer. The error of the last attempt is returned.
//
// Put Retry outside the balancer (each attempt then goes to the instance the balancer
// picks, usually another one) and outside [Breaker.Middleware]. Streaming endpoints are
// left alone: items already delivered cannot be taken back.
func Retry(cfg RetryConfig) endpoint.Middleware {
	cfg.setDefaults()
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if cfg.MaxAttempts <= 1 || info.Streaming || (!info.Idempotent && !cfg.RetryNonIdempotent) {
			if cfg.AttemptTimeout > 0 && !info.Streaming {
				return Timeout(cfg.AttemptTimeout)(info, next)
			}
			return next
		}
		r := &retrier{cfg: &cfg, info: info, next: next}
		if cfg.AttemptTimeout > 0 {
			r.attempts = &callDeadlines{d: cfg.AttemptTimeout}
		}
		return r.call
	}
}

type retrier struct {
	cfg      *RetryConfig
	info     endpoint.Info
	next     endpoint.Handler
	attempts *callDeadlines // the attempt timeout's shared timer; nil without one
}

func (r *retrier) call(ctx context.Context, req any) (any, error) {
	cfg := r.cfg
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	for attempt := 1; ; attempt++ {
		resp, err := r.attempt(ctx, req)
		if err == nil {
			if attempt == 1 {
				cfg.Budget.succeeded()
			}
			return resp, nil
		}
		if !cfg.Retryable(err) {
			if attempt == 1 { // the server answered: a client error is a sign of health
				cfg.Budget.succeeded()
			}
			return resp, err
		}
		if attempt >= cfg.MaxAttempts || ctx.Err() != nil {
			return resp, err
		}
		delay := backoff(cfg.BaseDelay, cfg.MaxDelay, attempt)
		if ra := retryAfter(err); ra > delay {
			delay = ra
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= delay {
			return resp, err
		}
		if !cfg.Budget.withdraw() {
			return resp, err
		}
		if cfg.OnRetry != nil {
			cfg.OnRetry(r.info, attempt, err)
		}
		if !sleep(ctx, delay) {
			return resp, err
		}
	}
}

// attempt makes one call, bounded by the attempt timeout if there is one.
func (r *retrier) attempt(ctx context.Context, req any) (any, error) {
	if r.cfg.AttemptTimeout <= 0 {
		return r.next(ctx, req)
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= r.cfg.AttemptTimeout {
		return r.next(ctx, req)
	}
	// The endpoint's attempts share one timer, as clientTimeout's calls do.
	actx := r.attempts.start(ctx)
	defer actx.release()
	resp, err := r.next(actx, req)
	if err != nil && actx.Err() == context.DeadlineExceeded && ctx.Err() == nil && !isDeadlineError(err) {
		err = svcerr.Wrap(svcerr.DeadlineExceeded, r.info.FullName()+": attempt timed out after "+r.cfg.AttemptTimeout.String(), err)
	}
	return resp, err
}

// backoff returns a random delay in [0, min(max, base·2^(retry-1))).
func backoff(base, maxDelay time.Duration, retry int) time.Duration {
	d := maxDelay
	if shift := retry - 1; shift < 32 {
		if b := base << shift; b > 0 && b < maxDelay {
			d = b
		}
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// retryAfter returns the delay a server asked for in the error's retry_after metadata
// (whole seconds), or 0.
func retryAfter(err error) time.Duration {
	e := svcerr.From(err)
	v, ok := e.Meta["retry_after"]
	if !ok {
		return 0
	}
	s, convErr := strconv.Atoi(v)
	if convErr != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
