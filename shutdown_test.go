package svckit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/svckit/svckit"
	shttp "github.com/svckit/svckit/transport/http"
)

// TestMain lets the test binary run as a service child process for the shutdown test.
func TestMain(m *testing.M) {
	if os.Getenv("SVCKIT_TEST_CHILD") == "slow" {
		svckit.Main("slow", &svckit.Config{}, func(_ context.Context, app *svckit.App) error {
			shttp.Handle(app.HTTP(), "POST /work", "Work", func(ctx context.Context, r struct {
				N int `json:"n"`
			}) (map[string]int, error) {
				time.Sleep(100 * time.Millisecond) // a request that takes a while
				return map[string]int{"n": r.N}, nil
			})
			return nil
		})
		return
	}
	os.Exit(m.Run())
}

// TestSIGTERMUnderLoad sends SIGTERM to a real service process while 32 clients keep it
// busy. Every request accepted before the signal must complete with 200, readiness must
// report 503 while requests are still being served, and the process must exit 0 within
// the shutdown deadline.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	cmd := exec.Command(os.Args[0], "-http-addr", "127.0.0.1:0", "-grpc-addr", "", "-admin-addr", "127.0.0.1:0",
		"-drain-delay", "300ms", "-shutdown-timeout", "5s")
	cmd.Env = append(os.Environ(), "SVCKIT_TEST_CHILD=slow", "OTEL_TRACES_EXPORTER=none")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan map[string]any, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()
	var httpURL, adminURL string
	deadline := time.After(10 * time.Second)
	for httpURL == "" {
		select {
		case m := <-lines:
			if m["msg"] == "service ready" {
				httpURL, adminURL = "http://"+m["http_addr"].(string), "http://"+m["admin_addr"].(string)
			}
		case <-deadline:
			t.Fatal("child never became ready")
		}
	}
	go func() { // keep draining logs so the child never blocks on stdout
		for range lines {
		}
	}()

	var signalled atomic.Int64 // unix nanos of the signal, 0 before
	type result struct {
		start, end int64
		status     int
		err        error
	}
	var mu sync.Mutex
	var results []result
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now().UnixNano()
				resp, err := client.Post(httpURL+"/work", "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
				r := result{start: start, err: err}
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					r.status = resp.StatusCode
				}
				r.end = time.Now().UnixNano()
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if err != nil && signalled.Load() != 0 {
					return // the server has closed its listener
				}
			}
		}(w)
	}
	// Readiness watcher: records when /readyz first says 503.
	var notReadyAt atomic.Int64
	go func() {
		for notReadyAt.Load() == 0 {
			resp, err := http.Get(adminURL + "/readyz")
			if err == nil {
				if resp.StatusCode == 503 {
					notReadyAt.Store(time.Now().UnixNano())
				}
				resp.Body.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	time.Sleep(500 * time.Millisecond)
	signalled.Store(time.Now().UnixNano())
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("child exited with %v, want 0", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("child did not exit within the shutdown deadline")
	}
	exitedAt := time.Now().UnixNano()
	close(stop)
	wg.Wait()

	sig := signalled.Load()
	var before, beforeOK, after, afterOK, servedAfterNotReady int
	for _, r := range results {
		if r.start < sig {
			before++
			if r.err == nil && r.status == 200 {
				beforeOK++
			} else {
				t.Errorf("request started before SIGTERM failed: status %d err %v", r.status, r.err)
			}
		} else {
			after++
			if r.err == nil && r.status == 200 {
				afterOK++
			}
		}
		if nr := notReadyAt.Load(); nr != 0 && r.err == nil && r.status == 200 && r.end > nr {
			servedAfterNotReady++
		}
	}
	nr := notReadyAt.Load()
	if nr == 0 || nr < sig {
		t.Fatalf("readiness never reported 503 after the signal")
	}
	if servedAfterNotReady == 0 {
		t.Fatal("no request completed after readiness flipped: readiness did not flip first")
	}
	t.Logf("requests before SIGTERM: %d (%d ok); after: %d (%d ok); readiness 503 after %v; completed after not-ready: %d; exit after %v",
		before, beforeOK, after, afterOK, time.Duration(nr-sig), servedAfterNotReady, time.Duration(exitedAt-sig))
}
