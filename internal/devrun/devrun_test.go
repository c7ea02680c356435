package devrun_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/devrun"
)

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSystem runs a real system: it builds addsvc, starts NATS and two supervised
// addsvc processes, sends them requests, and checks that logs, traces and metrics arrive
// in the collector, that a killed process is restarted, and that Stop ends everything.
func TestSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	out := &syncWriter{}
	ctx := context.Background()
	sys, err := devrun.Start(ctx, devrun.Options{
		Dir: "testdata/sys", StateDir: t.TempDir(), Out: out,
		Backoff: devrun.Backoff{Min: 50 * time.Millisecond, Max: time.Second, Stable: time.Minute},
		Grace:   5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = sys.Stop(ctx)
		}
	}()
	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(sys.Instances) != 2 {
		t.Fatalf("instances = %d, want 2", len(sys.Instances))
	}
	for _, in := range sys.Instances {
		if got := lastEnv(in.Env, "NATS_DUPLICATE_WINDOW"); got != "30s" {
			t.Errorf("%s: NATS_DUPLICATE_WINDOW=%q, want 30s", in.ID, got)
		}
	}
	post := func(in *devrun.Instance) {
		resp, err := http.Post("http://"+in.Addrs["http"]+"/sum", "application/json", strings.NewReader(`{"a":1,"b":2}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.TrimSpace(string(b)) != `{"v":3}` {
			t.Fatalf("sum = %s", b)
		}
	}
	for i := 0; i < 10; i++ {
		post(sys.Instances[i%2])
	}
	// Logs: access lines from both instances, with trace ids.
	eventually(t, "access-log lines of both instances", func() bool {
		seen := map[string]bool{}
		for _, l := range sys.Logs.Query(devrun.LogFilter{Service: "addsvc", Text: `"msg":"request"`}) {
			if l.TraceID != "" {
				seen[l.Instance] = true
			}
		}
		return seen["addsvc-1"] && seen["addsvc-2"]
	})
	// Traces: spans arrive over OTLP and each trace's log lines can be found by its id.
	var traceID string
	eventually(t, "traces over OTLP", func() bool {
		ts := sys.Traces.Query(devrun.TraceFilter{Service: "addsvc", Name: "Sum"})
		if len(ts) >= 10 {
			traceID = ts[0].ID
			return true
		}
		return false
	})
	lines := sys.Logs.Query(devrun.LogFilter{TraceID: traceID})
	if len(lines) == 0 {
		t.Fatalf("no log lines for trace %s", traceID)
	}
	for _, l := range lines {
		if l.TraceID != traceID {
			t.Fatalf("filter by trace id returned a line of trace %s", l.TraceID)
		}
	}
	// Metrics: a scrape pair gives a request rate for Sum.
	sys.Metrics.ScrapeOnce(ctx)
	for i := 0; i < 20; i++ {
		post(sys.Instances[i%2])
	}
	time.Sleep(100 * time.Millisecond)
	sys.Metrics.ScrapeOnce(ctx)
	found := false
	for k, pts := range sys.Metrics.Series() {
		if k.Method == "Sum" && k.Transport == "http" && len(pts) > 0 && pts[len(pts)-1].Rate > 0 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no RED series with a rate for Sum: %v", sys.Metrics.Series())
	}
	// Supervision: a killed instance is restarted and becomes ready again.
	victim := sys.Instance("addsvc-2")
	oldPID := victim.Status().PID
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "restart of addsvc-2", func() bool {
		st := victim.Status()
		return st.Restarts == 1 && st.State == devrun.StateRunning && st.PID != oldPID
	})
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	post(victim)
	if !strings.Contains(out.String(), "restarting in") {
		t.Fatalf("restart not shown in the output:\n%s", out)
	}
	// Stop: every process ends.
	stopped = true
	if err := sys.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, in := range sys.Instances {
		if st := in.Status(); st.State != devrun.StateStopped {
			t.Fatalf("%s is %s after Stop", in.ID, st.State)
		}
	}
	if !strings.Contains(out.String(), "addsvc-1") || !strings.Contains(out.String(), "service stopped") {
		t.Fatalf("output lacks prefixed log lines:\n%s", out)
	}
}

func TestManifestErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no name", "services: [{name: a, package: ./a}]", "name: is required"},
		{"no services", "name: x", "at least one service"},
		{"bad service name", "name: x\nservices: [{name: A_b, package: ./a}]", `services[0].name: "A_b"`},
		{"duplicate", "name: x\nservices: [{name: a, package: ./a}, {name: a, package: ./b}]", `"a" appears twice`},
		{"no package", "name: x\nservices: [{name: a}]", "services[0] (a).package: is required"},
		{"unknown field", "name: x\nservic: []", "field servic not found"},
		{"replicas", "name: x\nservices: [{name: a, package: ./a, replicas: 99}]", "replicas: 99"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := devrun.ParseManifest("sys/svckit.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("err = %v, want one line containing %q", err, tc.want)
			}
		})
	}
	m, err := devrun.ParseManifest("sys/svckit.yaml", []byte("name: x\nservices: [{name: a, package: ./a}]"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetReplicas([]string{"a=3"}); err != nil || m.Services[0].Replicas != 3 {
		t.Fatalf("SetReplicas: %v %d", err, m.Services[0].Replicas)
	}
	for _, bad := range []string{"b=2", "a=0", "a", "a=x"} {
		if err := m.SetReplicas([]string{bad}); err == nil {
			t.Fatalf("SetReplicas(%q) accepted", bad)
		}
	}
}

// TestRunUntilSignal is Ctrl-C in `svckit dev`: once the system is ready, SIGINT stops
// every process gracefully (each one shuts down on SIGTERM and says so) and
// RunUntilSignal returns without an error.
func TestRunUntilSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	out := &syncWriter{}
	// A slow terminal: lines queue up for the printer while the system stops.
	slow := writerFunc(func(p []byte) (int, error) {
		time.Sleep(3 * time.Millisecond)
		return out.Write(p)
	})
	ready := make(chan *devrun.System, 1)
	done := make(chan error, 1)
	go func() {
		done <- devrun.RunUntilSignal(context.Background(), devrun.Options{
			Dir: "testdata/sys", StateDir: t.TempDir(), Out: slow, Grace: 10 * time.Second,
		}, func(sys *devrun.System) { ready <- sys })
	}()
	var sys *devrun.System
	select {
	case sys = <-ready:
	case err := <-done:
		t.Fatalf("RunUntilSignal returned before the system was ready: %v\n%s", err, out)
	case <-time.After(2 * time.Minute):
		t.Fatalf("not ready after 2 minutes\n%s", out)
	}
	var pids []int
	for _, in := range sys.Instances {
		pids = append(pids, in.Status().PID)
	}
	// RunUntilSignal has caught SIGINT since before it started the system.
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunUntilSignal: %v\n%s", err, out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("still running a minute after SIGINT\n%s", out)
	}
	for i, in := range sys.Instances {
		if st := in.Status(); st.State != devrun.StateStopped {
			t.Errorf("%s is %s after SIGINT", in.ID, st.State)
		}
		if err := syscall.Kill(pids[i], 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists: %v", in.ID, pids[i], err)
		}
	}
	got := out.String()
	if !strings.Contains(got, "interrupt: stopping") {
		t.Errorf("output lacks the stop message:\n%s", got)
	}
	// Every line reached the terminal before RunUntilSignal returned: the last is the
	// runner's own.
	if !strings.HasSuffix(got, "svckit dev | stopped\n") {
		t.Errorf("output does not end with svckit dev's last line:\n%s", got)
	}
	if n := strings.Count(got, "service stopped"); n != len(sys.Instances) {
		t.Errorf("%d of %d instances said they stopped (SIGTERM, not SIGKILL):\n%s", n, len(sys.Instances), got)
	}
	if strings.Contains(got, "restarting in") {
		t.Errorf("an instance was restarted while stopping:\n%s", got)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// lastEnv returns the value of key in env as a process sees it: the last one.
func lastEnv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
