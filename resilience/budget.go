package resilience

import (
	"sync/atomic"
	"time"
)

// BudgetConfig configures a [Budget]. The zero value gives the defaults named below.
type BudgetConfig struct {
	// Ratio is the number of retry tokens a request earns when its first attempt succeeds
	// (or fails with an error that is not retryable, such as not_found). It bounds retries
	// to about Ratio times that traffic: 0.1 (the default) means at most 10% extra load.
	Ratio float64
	// MinPerSecond is the floor: tokens earned per second regardless of traffic, so that a
	// client with little traffic can still retry. Default 1; a negative value turns the
	// floor off.
	MinPerSecond float64
	// MaxTokens caps the tokens saved up, and so the burst of retries at the start of an
	// outage. The budget starts full. Default 10.
	MaxTokens float64
}

// Budget is a retry budget: a token bucket that successful first attempts fill (Ratio
// tokens each, plus a small floor per second) and every retry drains by one token. When
// the bucket is empty, [Retry] returns the error instead of retrying, so during an outage
// retries add at most MaxTokens plus the floor to the load, however many requests fail —
// the scheme of gRPC's retry throttling and Finagle's RetryBudget. A Budget is safe for
// concurrent use; deposits cost one atomic operation.
type Budget struct {
	ratio, floor, maxTokens int64 // in milli-tokens (floor: per second)
	tokens                  atomic.Int64
	lastRefill              atomic.Int64 // unix nanoseconds of the last floor refill
	retries, denied         atomic.Uint64
}

const milli = 1000

// NewBudget returns a full budget.
func NewBudget(cfg BudgetConfig) *Budget {
	if cfg.Ratio <= 0 {
		cfg.Ratio = 0.1
	}
	if cfg.MinPerSecond == 0 {
		cfg.MinPerSecond = 1
	}
	if cfg.MinPerSecond < 0 {
		cfg.MinPerSecond = 0
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 10
	}
	b := &Budget{
		ratio:     int64(cfg.Ratio * milli),
		floor:     int64(cfg.MinPerSecond * milli),
		maxTokens: int64(cfg.MaxTokens * milli),
	}
	b.tokens.Store(b.maxTokens)
	b.lastRefill.Store(time.Now().UnixNano())
	return b
}

// succeeded records a request whose first attempt succeeded.
func (b *Budget) succeeded() { b.deposit(b.ratio) }

func (b *Budget) deposit(n int64) {
	for {
		old := b.tokens.Load()
		if old >= b.maxTokens {
			return
		}
		nw := min(old+n, b.maxTokens)
		if b.tokens.CompareAndSwap(old, nw) {
			return
		}
	}
}

// withdraw takes one token for a retry and reports whether there was one.
func (b *Budget) withdraw() bool {
	b.refill()
	for {
		old := b.tokens.Load()
		if old < milli {
			b.denied.Add(1)
			return false
		}
		if b.tokens.CompareAndSwap(old, old-milli) {
			b.retries.Add(1)
			return true
		}
	}
}

// refill adds the floor's tokens for the time since the last refill.
func (b *Budget) refill() {
	if b.floor == 0 {
		return
	}
	now := time.Now().UnixNano()
	last := b.lastRefill.Load()
	add := (now - last) / 1e6 * b.floor / 1e3 // milli-tokens for the elapsed milliseconds
	if add <= 0 || !b.lastRefill.CompareAndSwap(last, now) {
		return
	}
	b.deposit(add)
}

// Tokens returns the retries the budget allows now.
func (b *Budget) Tokens() float64 {
	b.refill()
	return float64(b.tokens.Load()) / milli
}

// Retries returns how many retries the budget has allowed and how many it has refused.
func (b *Budget) Retries() (allowed, refused uint64) { return b.retries.Load(), b.denied.Load() }
