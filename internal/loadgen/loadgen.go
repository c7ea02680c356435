// Package loadgen drives HTTP load at a fixed concurrency and reports throughput, latency
// percentiles and failures. `svckit load` uses it to place orders on examples/shop.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Request is one request to send. Body is sent as application/json.
type Request struct {
	Method string
	URL    string
	Body   []byte
	Header http.Header
}

// Options configures a run.
type Options struct {
	// Concurrency is the number of workers, each with one request in flight (default 16).
	Concurrency int
	// Duration bounds the run (default 10 s); Requests, if set, bounds it too.
	Duration time.Duration
	// Requests stops the run after this many requests in total (0: no limit).
	Requests int64
	// Next returns the request a worker sends next; worker and seq identify it.
	Next func(worker int, seq int64) Request
	// OK decides whether a response counts as a success (default: status 2xx).
	OK func(status int, body []byte) bool
	// Client is the HTTP client (default: one with enough idle connections per host).
	Client *http.Client
}

// Result summarises a run.
type Result struct {
	Requests int64
	Failures int64
	Elapsed  time.Duration
	Rate     float64 // successful requests per second
	// P50, P99 and Max are latencies of the successful requests.
	P50, P99 time.Duration
	Max      time.Duration
	// ByStatus counts every answer by HTTP status (0: no answer, a transport error).
	ByStatus map[int]int64
	// FailedByStatus counts the failures alone by HTTP status (0: no answer); a failure
	// may have status 200 when OK rejected its body.
	FailedByStatus map[int]int64
	LastError      string
}

// String formats the result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%d requests in %s: %.0f ok/s, p50 %s, p99 %s, max %s, failures %d",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Rate, r.P50.Round(10*time.Microsecond),
		r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), r.Failures)
}

// Run sends requests until the duration passes, the request budget is spent or ctx ends.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Next == nil {
		return Result{}, fmt.Errorf("loadgen: Options.Next is required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.OK == nil {
		o.OK = func(status int, _ []byte) bool { return status >= 200 && status < 300 }
	}
	if o.Client == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Concurrency
		o.Client = &http.Client{Transport: t, Timeout: 30 * time.Second}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var sent, failed atomic.Int64
	var mu sync.Mutex
	byStatus, failedByStatus := map[int]int64{}, map[int]int64{}
	var lastErr string
	lat := make([][]time.Duration, o.Concurrency)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var seq int64
			for ctx.Err() == nil {
				n := sent.Add(1)
				if o.Requests > 0 && n > o.Requests {
					sent.Add(-1)
					return
				}
				r := o.Next(w, seq)
				seq++
				t0 := time.Now()
				status, body, err := do(ctx, o.Client, r)
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					sent.Add(-1) // cut off by the end of the run, not a failure
					return
				}
				ok := err == nil && o.OK(status, body)
				mu.Lock()
				byStatus[status]++
				if !ok {
					failedByStatus[status]++
					if err != nil {
						lastErr = err.Error()
					} else {
						lastErr = fmt.Sprintf("status %d: %.200s", status, body)
					}
				}
				mu.Unlock()
				if !ok {
					failed.Add(1)
					continue
				}
				lat[w] = append(lat[w], d)
			}
		}(w)
	}
	wg.Wait()
	res := Result{Requests: sent.Load(), Failures: failed.Load(), Elapsed: time.Since(start), ByStatus: byStatus,
		FailedByStatus: failedByStatus, LastError: lastErr}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if n := len(all); n > 0 {
		res.P50, res.P99, res.Max = all[(n-1)/2], all[(n-1)*99/100], all[n-1]
		res.Rate = float64(n) / res.Elapsed.Seconds()
	}
	return res, nil
}

func do(ctx context.Context, c *http.Client, r Request) (int, []byte, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, body)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if r.Body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}
