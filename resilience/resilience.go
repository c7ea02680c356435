// Package resilience holds endpoint middleware that keeps a service standing when its
// code or its dependencies misbehave.
//
// On servers: [Recover] contains panics, [Timeout] bounds calls (and the deadline travels
// on to downstream calls), [RateLimit] limits each caller (429 / RESOURCE_EXHAUSTED with
// Retry-After) and [ConcurrencyLimit] sheds load at once when too many calls run
// (503 / UNAVAILABLE).
//
// On clients: [Retry] repeats failed idempotent calls with exponential backoff and full
// jitter within a retry [Budget], and a [Breaker] keeps a circuit per instance (or per
// endpoint) that opens on consecutive failures or a high error rate and probes before it
// closes. A typical client chain, outermost first:
//
//	resilience.Retry(resilience.RetryConfig{AttemptTimeout: time.Second}),
//	balancer,                 // picks an instance, resilience.WithInstance(ctx, addr)
//	breaker.Middleware(),
//
// Every middleware here is an [endpoint.Middleware], so it works on every transport.
package resilience

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// Recover turns a panic in the wrapped endpoint, or in middleware inside it, into an
// Internal error for that call and logs the panic at level Error with its stack, under the
// message "panic in endpoint" and the attributes service, method, transport, panic and
// stack. The process keeps serving. A nil logger discards the log.
//
// The error's message is "internal error"; the panic value is only in its cause, which is
// logged but never shown to callers. A panic value that is an error is wrapped, so
// errors.Is and errors.As see it; panic(nil) arrives as a [runtime.PanicNilError].
//
// Put Recover first, outermost, so that it also covers the other middleware.
func Recover(logger *slog.Logger) endpoint.Middleware {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		service, method, transport := slog.String("service", info.Service), slog.String("method", info.Method),
			slog.String("transport", info.Transport)
		return func(ctx context.Context, req any) (resp any, err error) {
			defer func() {
				if v := recover(); v != nil {
					logger.LogAttrs(ctx, slog.LevelError, "panic in endpoint", service, method, transport,
						slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
					cause, ok := v.(error)
					if ok {
						cause = fmt.Errorf("panic: %w", cause)
					} else {
						cause = fmt.Errorf("panic: %v", v)
					}
					resp, err = nil, svcerr.Wrap(svcerr.Internal, "internal error", cause)
				}
			}()
			return next(ctx, req)
		}
	}
}

// Timeout bounds each call to d by giving the wrapped endpoint a context with a deadline
// d from now. A caller's earlier deadline wins and is passed on unchanged; the deadline
// travels on to downstream calls through the context (and over the wire, by the
// transports). d <= 0 turns Timeout off, and streaming endpoints ([endpoint.Info].Streaming)
// are left alone: a stream's length is the caller's business.
//
// The endpoint must honour its context: Timeout does not abandon a call that ignores it.
// An error returned once the deadline has passed is reported as DeadlineExceeded, with a
// message naming the method ("addsvc.Sum timed out after 2s") and the original error as
// its cause, unless it is a DeadlineExceeded [svcerr.Error] already. Errors returned before
// the deadline, and results without an error, pass through as they are.
func Timeout(d time.Duration) endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if d <= 0 || info.Streaming {
			return next
		}
		timedOut := fmt.Sprintf("%s timed out after %s", info.FullName(), d)
		callerDeadline := info.FullName() + ": deadline exceeded"
		if info.Client {
			return clientTimeout(d, timedOut, callerDeadline, next)
		}
		return func(ctx context.Context, req any) (any, error) {
			msg := timedOut
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
				msg = callerDeadline
			} else {
				// Like context.WithTimeout, but the timer is armed only if something waits
				// on Done: most calls finish without ever doing so.
				dc := newLazyDeadline(ctx, time.Now().Add(d))
				defer dc.release() // a direct call: a method value would be allocated
				ctx = dc
			}
			resp, err := next(ctx, req)
			if err != nil && ctx.Err() == context.DeadlineExceeded && !isDeadlineError(err) {
				err = svcerr.Wrap(svcerr.DeadlineExceeded, msg, err)
			}
			return resp, err
		}
	}
}

// clientTimeout is Timeout for a client endpoint. Every client transport waits on the
// context's Done for each call (grpc-go derives a cancelable context from it, net/http and
// nats.go select on it), which would arm the server side's lazy deadline on every call;
// instead the endpoint's calls share one timer (callDeadlines): no runtime timer per call.
func clientTimeout(d time.Duration, timedOut, callerDeadline string, next endpoint.Handler) endpoint.Handler {
	w := &callDeadlines{d: d}
	return func(ctx context.Context, req any) (any, error) {
		msg := timedOut
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
			msg = callerDeadline
		} else {
			c := w.start(ctx)
			defer c.release() // a direct call: a method value would be allocated
			ctx = c
		}
		resp, err := next(ctx, req)
		if err != nil && ctx.Err() == context.DeadlineExceeded && !isDeadlineError(err) {
			err = svcerr.Wrap(svcerr.DeadlineExceeded, msg, err)
		}
		return resp, err
	}
}

// isDeadlineError reports whether the first *svcerr.Error in err's chain is of kind
// DeadlineExceeded.
func isDeadlineError(err error) bool {
	var e *svcerr.Error
	return errors.As(err, &e) && e != nil && e.Kind == svcerr.DeadlineExceeded
}
