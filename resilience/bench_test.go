package resilience_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
)

// benchCall measures calls of h, which succeed, on ctx.
func benchCall(b *testing.B, ctx context.Context, mw endpoint.Middleware, info endpoint.Info) {
	b.Helper()
	var r any = &req{A: 1}
	ok := func(context.Context, any) (any, error) { return r, nil }
	h := endpoint.Chain(mw)(info, ok)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var clientInfo = endpoint.Info{Service: "sum", Method: "Sum", Transport: "http", Client: true, Idempotent: true}
var serverInfo = endpoint.Info{Service: "sum", Method: "Sum", Transport: "grpc"}

// BenchmarkMiddleware measures the per-call cost of each middleware on its success path.
func BenchmarkMiddleware(b *testing.B) {
	bg := context.Background()
	b.Run("none", func(b *testing.B) { benchCall(b, bg, endpoint.Nop, clientInfo) })
	b.Run("Retry", func(b *testing.B) { benchCall(b, bg, resilience.Retry(resilience.RetryConfig{}), clientInfo) })
	b.Run("Retry/AttemptTimeout", func(b *testing.B) {
		benchCall(b, bg, resilience.Retry(resilience.RetryConfig{AttemptTimeout: time.Second}), clientInfo)
	})
	b.Run("Timeout", func(b *testing.B) { benchCall(b, bg, resilience.Timeout(time.Second), clientInfo) })
	b.Run("Timeout/derived", func(b *testing.B) {
		// As a gRPC client call uses it: grpc-go derives a cancelable context from the
		// call's and waits on its Done.
		h := resilience.Timeout(30*time.Second)(clientInfo, func(ctx context.Context, req any) (any, error) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			default:
				return req, nil
			}
		})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h(bg, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("Breaker/endpoint", func(b *testing.B) {
		benchCall(b, bg, resilience.NewBreaker(resilience.BreakerConfig{}).Middleware(), clientInfo)
	})
	b.Run("Breaker/instance", func(b *testing.B) {
		ctx := resilience.WithInstance(bg, "10.0.0.7:8080")
		benchCall(b, ctx, resilience.NewBreaker(resilience.BreakerConfig{}).Middleware(), clientInfo)
	})
	b.Run("RateLimit", func(b *testing.B) {
		// A gRPC server context: the key is the peer address. The rate never limits.
		ctx := metadata.NewIncomingContext(bg, metadata.Pairs("x", "y"))
		keys := make([]string, 64)
		for i := range keys {
			keys[i] = "client-" + strconv.Itoa(i)
		}
		var n atomic.Uint32
		mw := resilience.RateLimit(resilience.RateLimitConfig{Rate: 1e9, Key: func(context.Context) string {
			return keys[n.Add(1)&63]
		}})
		benchCall(b, ctx, mw, serverInfo)
	})
	b.Run("ConcurrencyLimit", func(b *testing.B) {
		benchCall(b, bg, resilience.ConcurrencyLimit(1<<20, 0), serverInfo)
	})
}
