//go:build integration

package svckit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/svckit/svckit/internal/testnet"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrometheusScrapesAndPromtoolAccepts has a real Prometheus server (Debian's
// prometheus package) scrape a running service's admin port, checks that the request
// counter it stores rises with traffic, and runs `promtool check metrics` on /metrics.
func TestPrometheusScrapesAndPromtoolAccepts(t *testing.T) {
	for _, bin := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not installed (apt-get install -y prometheus): %v", bin, err)
		}
	}
	ta := startApp(t)
	post := func() {
		resp, err := http.Post(ta.httpURL+"/sum", "application/json", strings.NewReader(`{"a":1,"b":2}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for i := 0; i < 5; i++ {
		post()
	}

	// promtool lints the exposition: names, help, types, histogram conventions.
	resp, err := http.Get(ta.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lint := exec.Command("promtool", "check", "metrics")
	lint.Stdin = strings.NewReader(string(metrics))
	if out, err := lint.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}

	dir := t.TempDir()
	target := strings.TrimPrefix(ta.adminURL, "http://")
	cfg := fmt.Sprintf("global:\n  scrape_interval: 500ms\nscrape_configs:\n  - job_name: addsvc\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promAddr := startPrometheus(t, dir)

	query := func() float64 {
		q := `sum(svckit_requests_total{job="addsvc",transport="http",method="Sum",side="server"})`
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) == 0 {
			return -1
		}
		var v float64
		fmt.Sscan(r.Data.Result[0].Value[1].(string), &v)
		return v
	}
	waitFor := func(min float64) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			if v := query(); v >= min {
				return v
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("Prometheus never saw svckit_requests_total >= %v", min)
		return 0
	}
	first := waitFor(5)
	for i := 0; i < 7; i++ {
		post()
	}
	second := waitFor(first + 7)
	t.Logf("Prometheus saw the request counter rise from %v to %v", first, second)
}

// startPrometheus starts Prometheus with dir's prometheus.yml on a free loopback port and
// returns its address once it answers /-/ready. Prometheus binds the port itself, after
// the check, so the port comes from below Linux's ephemeral range (32768–60999), where
// sockets bound to port 0 elsewhere cannot take it in between; should something else
// take it all the same, Prometheus exits and is started again on another port, up to
// three times.
func startPrometheus(t *testing.T, dir string) string {
	t.Helper()
	for attempt := 1; ; attempt++ {
		addr := testnet.LowAddr(t)
		prom := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
			"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
		prom.Stdout, prom.Stderr = io.Discard, io.Discard
		if err := prom.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = prom.Wait(); close(exited) }()
		stop := func() { _ = prom.Process.Kill(); <-exited }
		if promReady(addr, exited, 30*time.Second) {
			t.Cleanup(stop)
			return addr
		}
		stop()
		if attempt == 3 {
			t.Fatalf("Prometheus did not become ready on %s (attempt %d)", addr, attempt)
		}
		t.Logf("Prometheus did not become ready on %s; starting it on another port", addr)
	}
}

// promReady waits until the Prometheus at addr answers /-/ready with 200, and reports
// false if its process exits or d passes first.
func promReady(addr string, exited <-chan struct{}, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
