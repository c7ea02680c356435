//go:build integration

package dashboard_test

import (
	"bufio"
	"context"
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

// TestSustainedLoad places orders on the shop (examples/shop, as TestBrowserShop runs it)
// from 16 clients for SVCKIT_LOAD_DURATION (for example 10m) with a dashboard status
// stream and an unfiltered log stream open, and logs the RSS of the process that hosts
// devrun and the dashboard every 30 s. It fails when the RSS at the end is more than half
// as large again as at one third of the run, when the stores have long been full. Without
// the variable it is skipped.
func TestSustainedLoad(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("SVCKIT_LOAD_DURATION"))
	if err != nil || d <= 0 {
		t.Skip("set SVCKIT_LOAD_DURATION (such as 10m) to run")
	}
	sys, tok := startShop(t)
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

	var sent, confirmed, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sys.PublicURL()+"/orders",
					strings.NewReader(`{"items":[{"productId":"sku-espresso","quantity":1},{"productId":"sku-filter","quantity":2}]}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				sent.Add(1)
				switch {
				case resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"confirmed"`):
					confirmed.Add(1)
				case resp.StatusCode != http.StatusOK:
					failed.Add(1)
				}
			}
		}()
	}

	start := time.Now()
	var third float64
	sample := func() float64 {
		rss := rssMB(t)
		traces, spans := sys.Traces.Stats()
		t.Logf("%5s  RSS %6.1f MB  orders %8d (confirmed %d, failed %d)  traces %5d  spans %6d  log lines %6d",
			time.Since(start).Round(time.Second), rss, sent.Load(), confirmed.Load(), failed.Load(), traces, spans, sys.Logs.Len())
		return rss
	}
	sample()
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
	t.Logf("%d orders in %s (%.0f/s), %d confirmed, %d failed", sent.Load(), d, float64(sent.Load())/d.Seconds(), confirmed.Load(), failed.Load())
	if third > 0 && end > third*1.5 {
		t.Fatalf("RSS grew from %.1f MB at a third of the run to %.1f MB at the end", third, end)
	}
}
