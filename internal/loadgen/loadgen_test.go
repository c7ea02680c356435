package loadgen_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/loadgen"
)

func TestRun(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if n.Add(1)%10 == 0 {
			http.Error(w, "every tenth fails", http.StatusServiceUnavailable)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 4, Duration: time.Minute, Requests: 200,
		Next: func(w int, seq int64) loadgen.Request {
			return loadgen.Request{URL: srv.URL, Body: []byte(`{"x":1}`)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.Failures != 20 || res.ByStatus[200] != 180 || res.ByStatus[503] != 20 ||
		len(res.FailedByStatus) != 1 || res.FailedByStatus[503] != 20 {
		t.Fatalf("result %+v", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Rate <= 0 || !strings.Contains(res.LastError, "503") {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.String(), "failures 20") {
		t.Fatalf("String() = %s", res)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 2, Duration: 200 * time.Millisecond,
		Next: func(int, int64) loadgen.Request { return loadgen.Request{Method: "GET", URL: srv.URL} },
	})
	if err != nil || res.Requests == 0 || res.Failures != 0 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestRunRequestsExact checks that -n is exact in both models: the server sees precisely
// Requests calls, numbered 0 to Requests-1 once each.
func TestRunRequestsExact(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate float64
		conc int
	}{
		{"closed", 0, 8},
		{"open", 2000, 8},
		{"open, one worker", 500, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
			defer srv.Close()
			var mu sync.Mutex
			seen := map[int64]bool{}
			res, err := loadgen.Run(context.Background(), loadgen.Options{
				Concurrency: tc.conc, Rate: tc.rate, Duration: time.Minute, Requests: 150,
				Next: func(w int, seq int64) loadgen.Request {
					mu.Lock()
					defer mu.Unlock()
					if seen[seq] {
						t.Errorf("seq %d sent twice", seq)
					}
					seen[seq] = true
					return loadgen.Request{Method: "GET", URL: srv.URL}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if n.Load() != 150 || res.Requests != 150 || res.Failures != 0 || res.Latency.Count() != 150 || len(seen) != 150 {
				t.Fatalf("server saw %d, result %+v, seqs %d", n.Load(), res, len(seen))
			}
			if tc.rate > 0 && res.Elapsed < time.Duration(149/tc.rate*float64(time.Second)) {
				t.Fatalf("150 calls at %g/s took %s: faster than the schedule", tc.rate, res.Elapsed)
			}
		})
	}
}

// TestRunOpenModelStall runs at a fixed rate against a server whose 11th request stalls
// 300 ms, with one call in flight at most. The sends due during the stall start late;
// their latencies count from their intended time, so they include the wait behind the
// stall (no coordinated omission), and they are counted as late.
func TestRunOpenModelStall(t *testing.T) {
	const (
		rate  = 200.0 // a send every 5 ms
		stall = 300 * time.Millisecond
		total = 100
	)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 11 {
			time.Sleep(stall) // the slow handler under test, not a wait for a condition
		}
	}))
	defer srv.Close()
	open, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 1, Rate: rate, Duration: time.Minute, Requests: total,
		Next: func(int, int64) loadgen.Request { return loadgen.Request{Method: "GET", URL: srv.URL} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if open.Requests != total || open.Failures != 0 {
		t.Fatalf("result %+v", open)
	}
	// The stalled call itself took the stall.
	if open.Max < stall {
		t.Errorf("max latency %s, want at least the %s stall", open.Max, stall)
	}
	// Sends due in the stall's 300 ms (60 of them at 5 ms) start after it: all but the last
	// ~1 ms of them more than LateAfter behind their time.
	if minLate := int64(stall/(5*time.Millisecond)) - 2; open.Late < minLate {
		t.Errorf("late sends %d, want at least %d", open.Late, minLate)
	}
	// The 40 sends due in the stall's first 200 ms end after it: 100 ms or more after their
	// intended time. With the stalled call, 41 of 100 latencies are ≥ 100 ms, so the 60th
	// percentile is too. A generator that timed from the actual send would report them fast.
	if q := open.Latency.Quantile(0.60); q < 100*time.Millisecond {
		t.Errorf("q60 %s, want ≥ 100ms: the wait behind the stall is not counted", q)
	}
	if open.Unsent != 0 {
		t.Errorf("unsent %d: every send of -n was made", open.Unsent)
	}
	t.Logf("open model: %s", open)

	// The closed model times each call from its actual send: one slow call, no late sends.
	n.Store(0)
	closed, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 1, Duration: time.Minute, Requests: total,
		Next: func(int, int64) loadgen.Request { return loadgen.Request{Method: "GET", URL: srv.URL} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if closed.Requests != total || closed.Late != 0 || closed.Max < stall {
		t.Fatalf("closed model: %+v", closed)
	}
	t.Logf("closed model: %s", closed)
}

// TestRunCutOffAndDrain checks the end of a run: calls in flight when Duration ends may
// finish within Drain and count; those still running after it, or when ctx ends, are cut
// off and counted apart.
func TestRunCutOffAndDrain(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	get := func(int, int64) loadgen.Request { return loadgen.Request{Method: "GET", URL: srv.URL} }

	// ctx ends while 3 calls hang: Run returns at once with them cut off.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan loadgen.Result)
	go func() {
		res, _ := loadgen.Run(ctx, loadgen.Options{Concurrency: 3, Duration: time.Minute, Next: get})
		done <- res
	}()
	for arrived.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	res := <-done
	if res.CutOff != 3 || res.Requests != 0 || res.Failures != 0 {
		t.Fatalf("cancelled: %+v", res)
	}

	// Duration ends while 2 calls hang; the drain of 100 ms passes: cut off.
	res, err := loadgen.Run(context.Background(), loadgen.Options{Concurrency: 2, Duration: 50 * time.Millisecond,
		Drain: 100 * time.Millisecond, Next: get})
	if err != nil || res.CutOff != 2 || res.Requests != 0 {
		t.Fatalf("drain passed: %+v %v", res, err)
	}
}

// TestRunDrainCounts checks that a call in flight when Duration ends and finishing within
// Drain is counted.
func TestRunDrainCounts(t *testing.T) {
	var first atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			time.Sleep(150 * time.Millisecond) // outlasts the 50 ms Duration
		}
	}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Options{Concurrency: 1, Duration: 50 * time.Millisecond,
		Drain: 10 * time.Second, Next: func(int, int64) loadgen.Request { return loadgen.Request{Method: "GET", URL: srv.URL} }})
	if err != nil || res.Requests != 1 || res.CutOff != 0 || res.Max < 150*time.Millisecond {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestRunCall drives a CallFunc that is not HTTP, with statuses of its own, and the
// progress callback.
func TestRunCall(t *testing.T) {
	var progress atomic.Int64
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 4, Duration: time.Minute, Requests: 300, ProgressEvery: 5 * time.Millisecond,
		Progress: func(p loadgen.Progress) { progress.Add(1) },
		Call: func(ctx context.Context, w int, seq int64) (int, []byte, error) {
			time.Sleep(100 * time.Microsecond) // some work, so that progress gets reported
			if seq%3 == 0 {
				return 14, nil, errors.New("unavailable")
			}
			return 0, nil, nil
		},
		OK: func(status int, _ []byte) bool { return status == 0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 300 || res.Failures != 100 || res.ByStatus[0] != 200 || res.FailedByStatus[14] != 100 || res.LastError != "unavailable" {
		t.Fatalf("%+v", res)
	}
	if progress.Load() == 0 {
		t.Error("no progress reported")
	}
}

func TestRunBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    loadgen.Options
		want string
	}{
		{"no call", loadgen.Options{}, "Call or Options.Next is required"},
		{"concurrency", loadgen.Options{Concurrency: loadgen.MaxConcurrency + 1, Next: func(int, int64) loadgen.Request { return loadgen.Request{} }}, "above the limit"},
		{"rate", loadgen.Options{Rate: -1, Next: func(int, int64) loadgen.Request { return loadgen.Request{} }}, "out of range"},
		{"NaN rate", loadgen.Options{Rate: math.NaN(), Next: func(int, int64) loadgen.Request { return loadgen.Request{} }}, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := loadgen.Run(context.Background(), tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestRunOpenModelUnsent runs at 200/s for 500 ms with one call in flight against a
// handler that takes 50 ms: at most ~10 of the 100 sends due can start, and the rest are
// reported as unsent instead of silently dropped from the schedule.
func TestRunOpenModelUnsent(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		time.Sleep(50 * time.Millisecond) // the slow handler under test
	}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 1, Rate: 200, Duration: 500 * time.Millisecond, Drain: 10 * time.Second,
		Next: func(int, int64) loadgen.Request { return loadgen.Request{Method: "GET", URL: srv.URL} },
	})
	if err != nil {
		t.Fatal(err)
	}
	// 100 sends are due; each started one holds the only worker ≥ 50 ms, so at most 11 start.
	if res.Requests+res.CutOff != n.Load() || res.Requests > 11 || res.Unsent != 100-res.Requests-res.CutOff {
		t.Fatalf("server saw %d; result %s (cut off %d)", n.Load(), res, res.CutOff)
	}
	if res.Late < res.Requests-1 {
		t.Errorf("late %d of %d: all but the first started behind their time", res.Late, res.Requests)
	}
}
