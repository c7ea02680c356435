// Package loadgen drives load at a fixed concurrency (closed model) or at a fixed rate
// (open model) and reports throughput, latency percentiles from an HDR-style histogram and
// failures by status. `svckit load` uses it against any HTTP endpoint, any unary gRPC
// method (found by server reflection) or an operation named in an OpenAPI document.
//
// At a fixed rate, send i is due at start + i/Rate whatever happened to the sends before
// it, and its latency is measured from that intended time: when the target stalls, the
// sends queued behind the stall are charged for the wait (no coordinated omission), and
// the sends that start more than [LateAfter] past their time are counted as late.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// LateAfter is how far past its intended time a send at a fixed rate may start before it
// counts as late in [Result.Late].
const LateAfter = time.Millisecond

// MaxConcurrency bounds Options.Concurrency.
const MaxConcurrency = 10_000

// MaxResponseBytes is how much of a response body an HTTP call reads for OK; the rest is
// discarded (up to 16 MiB, then the connection is dropped).
const MaxResponseBytes = 1 << 20

// Request is one HTTP request to send. Body, if set, is sent as application/json unless
// Header says otherwise.
type Request struct {
	Method string // default POST
	URL    string
	Body   []byte
	Header http.Header
}

// CallFunc makes one call and returns its status and (a bounded prefix of) its answer.
// For HTTP the status is the HTTP status, 0 when there was no answer; for gRPC it is the
// gRPC code. A call that gets an answer the target considers a failure returns its status
// and a non-nil error.
type CallFunc func(ctx context.Context, worker int, seq int64) (status int, body []byte, err error)

// Options configures a run.
type Options struct {
	// Concurrency is the number of workers, each with at most one call in flight (default
	// 16, at most MaxConcurrency). At a fixed Rate it bounds the calls in flight.
	Concurrency int
	// Rate, if positive, sends this many calls per second on a fixed schedule (the open
	// model); zero sends the next call as soon as a worker is free (the closed model).
	Rate float64
	// Duration bounds the time during which calls are started (default 10 s); Requests, if
	// set, bounds the run too.
	Duration time.Duration
	// Drain is how long calls still in flight when Duration ends may take to finish
	// (default 5 s); those cut off then are counted in Result.CutOff, not as failures.
	Drain time.Duration
	// Requests stops the run after this many calls in total (0: no limit).
	Requests int64
	// Call makes one call. If nil, Next builds an HTTP request that Client sends.
	Call CallFunc
	// Next returns the HTTP request to send when Call is nil; seq numbers the calls of the
	// run from 0 and worker is the worker sending it.
	Next func(worker int, seq int64) Request
	// OK decides whether an answer without error counts as a success (default: status
	// 2xx).
	OK func(status int, body []byte) bool
	// Client is the HTTP client for Next (default: one with enough idle connections per
	// host and a 30 s timeout).
	Client *http.Client
	// Progress, if set, is called every ProgressEvery (default 1 s) while the run lasts.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed  time.Duration
	Done     int64 // calls answered (or failed) so far
	Failures int64
	Late     int64
	InFlight int64
}

// Result summarises a run.
type Result struct {
	Requests int64 // calls completed, successes and failures
	Failures int64
	Elapsed  time.Duration
	Rate     float64 // successful calls per second
	// P50, P90, P99 and Max are latencies of the successful calls: from the intended send
	// time at a fixed rate, from the send otherwise.
	P50, P90, P99 time.Duration
	Max           time.Duration
	// Latency holds every successful call's latency, for other quantiles.
	Latency *Histogram
	// Late counts the sends at a fixed rate that started more than LateAfter past their
	// intended time because every worker was busy or the generator fell behind.
	Late int64
	// Unsent counts, at a fixed rate, the sends that fell due before the run ended but
	// never started: every one of the Concurrency workers was busy until the end. They
	// are load the schedule asked for and the target never saw; a non-zero Unsent means
	// the rate was not reached.
	Unsent int64
	// CutOff counts the calls in flight when the run was stopped (ctx ended, or Drain
	// passed after Duration); they are in neither Requests nor Failures.
	CutOff int64
	// ByStatus counts every answer by status (for HTTP, 0 is no answer: a transport error).
	ByStatus map[int]int64
	// FailedByStatus counts the failures alone by status; an HTTP failure may have status
	// 200 when OK rejected its body.
	FailedByStatus map[int]int64
	LastError      string
}

// String formats the result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%d requests in %s: %.0f ok/s, p50 %s, p90 %s, p99 %s, max %s, failures %d, late %d, unsent %d",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Rate, Round(r.P50), Round(r.P90),
		Round(r.P99), Round(r.Max), r.Failures, r.Late, r.Unsent)
}

// Round rounds a latency for display: to 10 µs, or 1 µs below 100 µs.
func Round(d time.Duration) time.Duration {
	if d < 100*time.Microsecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

// Run makes calls until Duration passes, the Requests budget is spent or ctx ends, and
// returns the summary. When ctx ends the calls in flight are cancelled at once.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Call == nil && o.Next == nil {
		return Result{}, errors.New("loadgen: Options.Call or Options.Next is required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Concurrency > MaxConcurrency {
		return Result{}, fmt.Errorf("loadgen: concurrency %d is above the limit of %d", o.Concurrency, MaxConcurrency)
	}
	if !(o.Rate >= 0 && o.Rate <= 1e7) { // NaN too
		return Result{}, fmt.Errorf("loadgen: rate %g/s is out of range (0 to 10,000,000)", o.Rate)
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	if o.OK == nil {
		o.OK = func(status int, _ []byte) bool { return status >= 200 && status < 300 }
	}
	call := o.Call
	if call == nil {
		if o.Client == nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.MaxIdleConnsPerHost = o.Concurrency
			o.Client = &http.Client{Transport: t, Timeout: 30 * time.Second}
		}
		call = HTTPCall(o.Client, o.Next)
	}

	start := time.Now()
	end := start.Add(o.Duration)
	// issue ends when no more calls may start; callCtx when calls in flight are cut off.
	issue, stopIssue := context.WithDeadline(ctx, end)
	defer stopIssue()
	callCtx, cutCalls := context.WithDeadline(ctx, end.Add(o.Drain))
	defer cutCalls()

	var (
		ticket, done, failed, late, inFlight, cutOff atomic.Int64
		mu                                           sync.Mutex
		byStatus, failedByStatus                     = map[int]int64{}, map[int]int64{}
		lastErr                                      string
		hist                                         = new(Histogram)
	)
	worker := func(w int) {
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		for {
			seq := ticket.Add(1) - 1
			if o.Requests > 0 && seq >= o.Requests {
				return
			}
			var intended time.Time
			if o.Rate > 0 {
				intended = start.Add(time.Duration(float64(seq) * float64(time.Second) / o.Rate))
				if !intended.Before(end) {
					return
				}
				if wait := time.Until(intended); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-issue.Done():
						return
					}
				} else if -wait > LateAfter {
					late.Add(1)
				}
			} else {
				intended = time.Now()
			}
			if issue.Err() != nil {
				return
			}
			inFlight.Add(1)
			status, body, err := call(callCtx, w, seq)
			d := time.Since(intended)
			inFlight.Add(-1)
			if err != nil && callCtx.Err() != nil {
				cutOff.Add(1) // cut off by the end of the run: neither success nor failure
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
			if ok {
				hist.Record(d)
			} else {
				failed.Add(1)
			}
			done.Add(1)
		}
	}
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Go(func() { worker(w) })
	}
	finished := make(chan struct{})
	var pwg sync.WaitGroup
	if o.Progress != nil {
		pwg.Go(func() {
			t := time.NewTicker(o.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-finished:
					return
				case <-t.C:
					o.Progress(Progress{Elapsed: time.Since(start), Done: done.Load(), Failures: failed.Load(),
						Late: late.Load(), InFlight: inFlight.Load()})
				}
			}
		})
	}
	wg.Wait()
	close(finished)
	pwg.Wait()
	res := Result{Requests: done.Load(), Failures: failed.Load(), Elapsed: time.Since(start), Latency: hist,
		Late: late.Load(), CutOff: cutOff.Load(), ByStatus: byStatus, FailedByStatus: failedByStatus, LastError: lastErr}
	if o.Rate > 0 {
		// The sends due before issuing stopped (Duration, or ctx) less those started.
		stopped := min(res.Elapsed, o.Duration)
		due := int64(math.Ceil(stopped.Seconds() * o.Rate))
		if o.Requests > 0 {
			due = min(due, o.Requests)
		}
		res.Unsent = max(due-res.Requests-res.CutOff, 0)
	}
	if hist.Count() > 0 {
		res.P50, res.P90, res.P99, res.Max = hist.Quantile(0.50), hist.Quantile(0.90), hist.Quantile(0.99), hist.Max()
		res.Rate = float64(hist.Count()) / res.Elapsed.Seconds()
	}
	return res, nil
}

// HTTPCall returns a CallFunc that sends the request next builds with c. The status is
// the HTTP status (0 with the error when there was no answer); up to MaxResponseBytes of
// the body are returned.
func HTTPCall(c *http.Client, next func(worker int, seq int64) Request) CallFunc {
	return func(ctx context.Context, worker int, seq int64) (int, []byte, error) {
		return SendHTTP(ctx, c, next(worker, seq))
	}
}

// SendHTTP sends r with c and returns the status (0 with the error when there was no
// answer) and up to MaxResponseBytes of the body; the rest of the body is discarded.
func SendHTTP(ctx context.Context, c *http.Client, r Request) (int, []byte, error) {
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
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if err == nil {
		// Read what is left (bounded) so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<20))
	}
	return resp.StatusCode, b, err
}
