//go:build integration

package dashboard_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssMB reads this process's resident set size: the test process is what `svckit dev`
// is (the collector, the stores, the dashboard), without the services' processes.
func rssMB(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// TestSustainedLoad sends requests through relay → addsvc for SVCKIT_LOAD_DURATION (for
// example 10m) with a dashboard status stream and an unfiltered log stream open, and
// logs the RSS of the process that hosts devrun and the dashboard every 30 s. It fails
// when the RSS at the end is more than half as large again as at one third of the run,
// when the stores have long been full. Without the variable it is skipped.
func TestSustainedLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SVCKIT_LOAD_DURATION"))
	if err != nil || d <= 0 {
		t.Skip("set SVCKIT_LOAD_DURATION (such as 10m) to run")
	}
	sys := startSystem(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	// Two dashboard viewers: the status stream and the live log stream, read and discarded.
	for _, path := range []string{"/api/stream/status", "/api/stream/logs"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, sys.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
		}()
	}

	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sys.PublicURL()+"/add", strings.NewReader(fmt.Sprintf(`{"a":%d,"b":1}`, i)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		}()
	}

	start := time.Now()
	var third float64
	sample := func() float64 {
		rss := rssMB(t)
		traces, spans := sys.Traces.Stats()
		t.Logf("%5s  RSS %6.1f MB  requests %8d (failed %d)  traces %5d  spans %6d  log lines %6d",
			time.Since(start).Round(time.Second), rss, sent.Load(), failed.Load(), traces, spans, sys.Logs.Len())
		return rss
	}
	tick := time.NewTicker(min(30*time.Second, d/4))
	defer tick.Stop()
	tookThird := false
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			rss := sample()
			if !tookThird && time.Since(start) >= d/3 {
				third, tookThird = rss, true
			}
		}
	}
	wg.Wait()
	end := sample()
	t.Logf("%d requests in %s (%.0f/s)", sent.Load(), d, float64(sent.Load())/d.Seconds())
	if third > 0 && end > third*1.5 {
		t.Fatalf("RSS grew from %.1f MB at a third of the run to %.1f MB at the end", third, end)
	}
}
