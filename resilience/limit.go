package resilience

import (
	"container/list"
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// RateLimitConfig configures [RateLimit]. The zero value gives the defaults named below.
type RateLimitConfig struct {
	// Rate is the sustained number of calls per second allowed for one key. Default 100.
	Rate float64
	// Burst is the number of calls one key may make at once above the rate. Default
	// Rate (at least 1).
	Burst int
	// Key returns the key a call is counted under. The default, [DefaultRateLimitKey], is
	// the authenticated subject if there is one and the caller's IP address otherwise.
	// Calls with the key "" are not limited.
	Key func(ctx context.Context) string
	// MaxKeys bounds the number of keys whose limiters are kept; the least recently used
	// is dropped (and starts afresh if it comes back). Default 10000.
	MaxKeys int
}

// DefaultRateLimitKey returns "sub:" and the authenticated subject of the call
// (meta.Subject, set by authentication middleware) or, without one, "ip:" and the
// caller's IP address (meta.Peer); "" when neither is known.
func DefaultRateLimitKey(ctx context.Context) string {
	if s := meta.Subject(ctx); s != "" {
		return "sub:" + s
	}
	if p := meta.Peer(ctx); p != "" {
		return "ip:" + p
	}
	return ""
}

// RateLimit is server-side middleware that limits the calls of each key (client identity
// or IP address) with a token bucket of cfg.Rate per second and cfg.Burst. A call over the
// limit fails at once with svcerr.ResourceExhausted and a retry_after metadata entry,
// which the transports send as 429 with a Retry-After header and as RESOURCE_EXHAUSTED.
//
// All endpoints wrapped by the returned middleware share the limiters: a key's budget is
// for the whole server. Put RateLimit after authentication, so that the key can be the
// caller's identity. The limiters live in a map bounded by MaxKeys (least recently used
// out), so memory stays bounded whatever the number of callers.
func RateLimit(cfg RateLimitConfig) endpoint.Middleware {
	if cfg.Rate <= 0 {
		cfg.Rate = 100
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.Rate))
	}
	if cfg.Key == nil {
		cfg.Key = DefaultRateLimitKey
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 10000
	}
	l := &limiters{cfg: cfg, m: make(map[string]*list.Element), lru: list.New()}
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if info.Client {
			return next
		}
		return func(ctx context.Context, req any) (any, error) {
			key := cfg.Key(ctx)
			if key == "" {
				return next(ctx, req)
			}
			if wait := l.reserve(key, time.Now()); wait > 0 {
				secs := int(math.Ceil(wait.Seconds()))
				return nil, svcerr.New(svcerr.ResourceExhausted, "rate limit exceeded").
					WithMeta("retry_after", strconv.Itoa(max(1, secs)))
			}
			return next(ctx, req)
		}
	}
}

type limiters struct {
	cfg RateLimitConfig
	mu  sync.Mutex
	m   map[string]*list.Element // key -> element of lru holding a *keyLimiter
	lru *list.List               // front: most recently used
}

type keyLimiter struct {
	key string
	lim *rate.Limiter
}

// reserve takes a token for key and returns 0, or returns how long until one would be
// available and takes nothing.
func (l *limiters) reserve(key string, now time.Time) time.Duration {
	l.mu.Lock()
	var lim *rate.Limiter
	if el, ok := l.m[key]; ok {
		l.lru.MoveToFront(el)
		lim = el.Value.(*keyLimiter).lim
	} else {
		lim = rate.NewLimiter(rate.Limit(l.cfg.Rate), l.cfg.Burst)
		l.m[key] = l.lru.PushFront(&keyLimiter{key: key, lim: lim})
		if l.lru.Len() > l.cfg.MaxKeys {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.m, old.Value.(*keyLimiter).key)
		}
	}
	l.mu.Unlock()
	if lim.AllowN(now, 1) {
		return 0
	}
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second
	}
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return max(d, time.Millisecond)
}

// ConcurrencyLimit is server-side middleware that lets at most limit calls run at once
// through the endpoints it wraps (they share the limit). A call over the limit waits up to
// wait for a slot (0: not at all) and then fails with svcerr.Unavailable and a retry_after
// of 1 second (503 with Retry-After, or UNAVAILABLE), so that an overloaded server sheds
// load at once instead of queueing without end. limit <= 0 turns the limit off. Streaming
// calls hold a slot for the whole stream.
func ConcurrencyLimit(limit int, wait time.Duration) endpoint.Middleware {
	if limit <= 0 {
		return endpoint.Nop
	}
	busy := func() error {
		return svcerr.New(svcerr.Unavailable, "server overloaded, try again later").WithMeta("retry_after", "1")
	}
	if wait <= 0 {
		// Without waiting, a counter is all it takes.
		var running atomic.Int64
		return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
			if info.Client {
				return next
			}
			return func(ctx context.Context, req any) (any, error) {
				if running.Add(1) > int64(limit) {
					running.Add(-1)
					return nil, busy()
				}
				defer running.Add(-1)
				return next(ctx, req)
			}
		}
	}
	sem := make(chan struct{}, limit)
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if info.Client {
			return next
		}
		return func(ctx context.Context, req any) (any, error) {
			select {
			case sem <- struct{}{}:
			default:
				if !acquire(ctx, sem, wait) {
					return nil, busy()
				}
			}
			defer func() { <-sem }()
			return next(ctx, req)
		}
	}
}

// acquire waits up to wait for a slot of sem.
func acquire(ctx context.Context, sem chan struct{}, wait time.Duration) bool {
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}
