package devrun_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/internal/devrun"
)

// TestRestartWithoutGap replaces the only process of a service three times while
// clients call it over HTTP/1.1 (keep-alive, POST: requests Go's client never replays)
// and gRPC, and counts the calls that failed: none may. Then it SIGKILLs the process and
// connects while no process runs: the connection waits in the socket the runner holds
// and its request is answered by the restarted process, instead of being refused.
func TestRestartWithoutGap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	out := &syncWriter{}
	ctx := context.Background()
	sys, err := devrun.Start(ctx, devrun.Options{
		Dir: "testdata/sys", StateDir: t.TempDir(), Out: out, Replicas: []string{"addsvc=1"},
		Backoff: devrun.Backoff{Min: 50 * time.Millisecond, Max: time.Second, Stable: time.Minute},
		Grace:   10 * time.Second, Quiet: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sys.Stop(ctx) }()
	readyCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	in := sys.Instance("addsvc-1")

	cc, err := grpc.NewClient(in.Addrs["grpc"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	grpcSvc := addsvc.NewClient(addsvc.NewGRPCClient(cc))
	httpClient := &http.Client{Timeout: 20 * time.Second}
	httpSum := func(a int64) error {
		resp, err := httpClient.Post("http://"+in.Addrs["http"]+"/sum", "application/json",
			strings.NewReader(fmt.Sprintf(`{"a":%d,"b":1}`, a)))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if want := fmt.Sprintf(`{"v":%d}`, a+1); resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		}
		return nil
	}
	grpcSum := func(a int64) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		v, err := grpcSvc.Sum(ctx, a, 1)
		if err == nil && v != a+1 {
			err = fmt.Errorf("sum %d, want %d", v, a+1)
		}
		return err
	}

	var calls, failed atomic.Int64
	var errMu sync.Mutex
	var errs []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, call := range []func(int64) error{httpSum, httpSum, grpcSum, grpcSum} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int64(i * 1_000_000); ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				if err := call(n); err != nil {
					failed.Add(1)
					errMu.Lock()
					errs = append(errs, err.Error())
					errMu.Unlock()
				}
			}
		}()
	}
	waitCalls := func(n int64) {
		t.Helper()
		target := calls.Load() + n
		eventually(t, fmt.Sprintf("%d more calls", n), func() bool { return calls.Load() >= target })
	}
	waitCalls(200)
	pids := map[int]bool{in.Status().PID: true}
	for range 3 {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		began := time.Now()
		err := in.Restart(rctx)
		cancel()
		t.Logf("Restart took %s", time.Since(began).Round(time.Millisecond))
		if err != nil {
			t.Fatalf("Restart: %v\n%s", err, out)
		}
		pid := in.Status().PID
		if pids[pid] {
			t.Fatalf("Restart left pid %d serving", pid)
		}
		pids[pid] = true
		waitCalls(200) // the new process serves
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed across 3 restarts; first errors: %q", n, calls.Load(), errs[:min(5, len(errs))])
	}
	t.Logf("3 restarts under load: %d calls, 0 failed", calls.Load())
	if st := in.Status(); st.Restarts != 3 || st.State != devrun.StateRunning {
		t.Fatalf("status after 3 restarts: %+v", st)
	}

	// A crash: nothing accepts for a moment, but the socket stays open.
	httpClient.CloseIdleConnections() // the request below goes on a new connection
	if err := in.Kill(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", in.Addrs["http"], 5*time.Second)
	if err != nil {
		t.Fatalf("connecting while the process restarts: %v (refused: the runner did not hold the socket)", err)
	}
	conn.Close()
	if err := httpSum(41); err != nil {
		t.Fatalf("a request sent while the process restarted: %v", err)
	}
}
