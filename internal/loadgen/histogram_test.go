package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestHistIndex checks that every value lands in a bucket whose range holds it and whose
// width is within the promised precision.
func TestHistIndex(t *testing.T) {
	vals := []uint64{0, 1, 1023, 1024, 1025, 2047, 2048, 4095, 4096, 1e6, 1e9, 123456789, 1<<histMaxBits - 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		vals = append(vals, r.Uint64N(1<<histMaxBits))
	}
	for _, v := range vals {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, out of [0, %d)", v, i, histBuckets)
		}
		hi := histHighest(i)
		lo := uint64(0)
		if i > 0 {
			lo = histHighest(i-1) + 1
		}
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if float64(hi-lo) > float64(v)/512+1 {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/512 of %d", i, lo, hi, v)
		}
	}
	if got := histHighest(histBuckets - 1); got != 1<<histMaxBits-1 {
		t.Fatalf("last bucket ends at %d, want %d", got, uint64(1<<histMaxBits-1))
	}
}

// TestHistogramQuantiles compares the histogram's quantiles with the exact ones of the
// sorted samples, for several distributions.
func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		n    int
		gen  func(i int) time.Duration
	}{
		{"constant", 1000, func(int) time.Duration { return 3 * time.Millisecond }},
		{"uniform 0-10ms", 100000, func(int) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential mean 1ms", 100000, func(int) time.Duration { return time.Duration(r.ExpFloat64() * 1e6) }},
		{"bimodal with a 2s stall tail", 10000, func(i int) time.Duration {
			if i%100 == 0 {
				return 2*time.Second + time.Duration(i)*time.Microsecond
			}
			return 200*time.Microsecond + time.Duration(i%50)*time.Microsecond
		}},
		{"tiny", 3, func(i int) time.Duration { return time.Duration(i+1) * 700 }},
		{"one", 1, func(int) time.Duration { return 42 * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			samples := make([]time.Duration, tc.n)
			for i := range samples {
				samples[i] = tc.gen(i)
				h.Record(samples[i])
			}
			slices.Sort(samples)
			if h.Count() != int64(tc.n) || h.Max() != samples[tc.n-1] {
				t.Fatalf("count %d max %s, want %d %s", h.Count(), h.Max(), tc.n, samples[tc.n-1])
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				rank := max(int(math.Ceil(q*float64(tc.n))), 1)
				want := samples[rank-1]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/512+1 {
					t.Errorf("q%g = %s, exact %s", q, got, want)
				}
			}
		})
	}
	var empty Histogram
	if empty.Quantile(0.5) != 0 || empty.Max() != 0 {
		t.Fatal("an empty histogram reports a latency")
	}
	var clamp Histogram
	clamp.Record(-time.Second)
	clamp.Record(time.Hour)
	if clamp.Quantile(0.5) != 0 || clamp.Max() != 1<<histMaxBits-1 {
		t.Fatalf("clamped: q50 %s max %s", clamp.Quantile(0.5), clamp.Max())
	}
}
