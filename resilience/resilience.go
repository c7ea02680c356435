// Package resilience holds endpoint middleware that keeps a service standing when its
// code or its dependencies misbehave: panic recovery and timeouts now; retries with
// backoff, circuit breakers and rate limits join them.
//
// Every middleware here is an [endpoint.Middleware], so it works on servers and clients
// and on every transport.
package resilience

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// Recover turns a panic in the wrapped endpoint into an Internal error for that call and
// logs the panic with its stack. The process keeps serving.
func Recover(logger *slog.Logger) endpoint.Middleware {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		attrs := []slog.Attr{slog.String("service", info.Service), slog.String("method", info.Method),
			slog.String("transport", info.Transport)}
		return func(ctx context.Context, req any) (resp any, err error) {
			defer func() {
				if v := recover(); v != nil {
					logger.LogAttrs(ctx, slog.LevelError, "panic in endpoint",
						append(attrs, slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))...)
					resp, err = nil, svcerr.Wrap(svcerr.Internal, "internal error", fmt.Errorf("panic: %v", v))
				}
			}()
			return next(ctx, req)
		}
	}
}

// Timeout bounds each call to d. A caller's earlier deadline wins; the deadline travels
// on to downstream calls through the context (and over the wire, by the transports). A
// call that runs out of time fails with DeadlineExceeded.
func Timeout(d time.Duration) endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if d <= 0 || info.Streaming { // a stream's length is the caller's business
			return next
		}
		return func(ctx context.Context, req any) (any, error) {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
				return next(ctx, req)
			}
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			resp, err := next(ctx, req)
			if err != nil && ctx.Err() == context.DeadlineExceeded && svcerr.KindOf(err) != svcerr.DeadlineExceeded {
				err = svcerr.Wrap(svcerr.DeadlineExceeded, fmt.Sprintf("%s timed out after %s", info.FullName(), d), err)
			}
			return resp, err
		}
	}
}
