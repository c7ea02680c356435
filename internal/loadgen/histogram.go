package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram records latencies in log-linear buckets, as an HDR histogram does: exact below
// 1,024 ns and within 1/512 (0.2 %) of the true value above, up to about 18 minutes
// (longer values are recorded as that). Record is safe for concurrent use and allocates
// nothing; the zero value is ready to use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

const (
	histPrec    = 10                                            // bits of precision: 2^10 exact values
	histHalf    = 1 << (histPrec - 1)                           // sub-buckets per power of two above them
	histMaxBits = 40                                            // values are clamped to 2^40-1 ns
	histBuckets = 1<<histPrec + (histMaxBits-histPrec)*histHalf // 16,384 counters
)

// histIndex returns the bucket of v nanoseconds (0 ≤ v < 2^histMaxBits).
func histIndex(v uint64) int {
	if v < 1<<histPrec {
		return int(v)
	}
	e := bits.Len64(v) - histPrec // ≥ 1: v is in [2^(histPrec+e-1), 2^(histPrec+e))
	return 1<<histPrec + (e-1)*histHalf + int(v>>e) - histHalf
}

// histHighest returns the largest value that falls in bucket i.
func histHighest(i int) uint64 {
	if i < 1<<histPrec {
		return uint64(i)
	}
	e := (i-1<<histPrec)/histHalf + 1
	sub := uint64((i-1<<histPrec)%histHalf + histHalf)
	return (sub+1)<<e - 1
}

// Record adds one latency. Negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	if v >= 1<<histMaxBits {
		v = 1<<histMaxBits - 1
	}
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if int64(v) <= m || h.max.CompareAndSwap(m, int64(v)) {
			return
		}
	}
}

// Count returns the number of values recorded.
func (h *Histogram) Count() int64 { return int64(h.n.Load()) }

// Max returns the largest value recorded, exactly (up to the clamp).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the value at quantile q (0 < q ≤ 1): the smallest recorded value that
// at least q of the values are less than or equal to, to within the histogram's
// precision (reported as the top of its bucket, never above Max). It is 0 when nothing
// was recorded. Call it when no Record runs concurrently.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(histHighest(i)), h.Max())
		}
	}
	return h.Max()
}
