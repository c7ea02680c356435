package run_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svckit/svckit/health"
	"github.com/svckit/svckit/run"
)

// childEnv selects the child mode of TestChildProcess when the test binary re-executes
// itself.
const childEnv = "SVCKIT_RUN_TEST_CHILD"

// TestChildProcess is not a test: it is the service process that the signal tests start by
// re-executing the test binary. It reports on stdout, one line each: "READY <addr>" once
// serving, "INFLIGHT" when a /slow request is being handled, "CLOSING" when its close hook
// runs, and "EXIT <error or ok>" when Run has returned. Its logs go to stderr.
func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("run by the signal tests only")
	}
	out := &syncWriter{w: os.Stdout}
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }

	h := health.New()
	mux := health.AdminMux(h, nil)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		say("INFLIGHT")
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		say("EXIT %v", err)
		os.Exit(2)
	}

	g := run.NewGroup( // default signals: SIGINT, SIGTERM
		run.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
		run.WithShutdownTimeout(30*time.Second),
		run.WithDrainDelay(50*time.Millisecond),
	)
	serve, stop := run.HTTPServer(&http.Server{Handler: mux}, ln)
	g.Add("http", serve, stop)
	g.OnReady("health", func(context.Context) error {
		h.SetReady(true)
		say("READY %s", ln.Addr())
		return nil
	})
	g.OnShutdown(run.PhaseNotReady, "health", func(context.Context) error { h.SetReady(false); return nil })
	g.OnShutdown(run.PhaseClose, "store", func(ctx context.Context) error {
		say("CLOSING")
		if mode == "hang-on-close" {
			<-ctx.Done() // only a second signal ends this before the 30s deadline
			return ctx.Err()
		}
		return nil
	})

	if err := g.Run(context.Background()); err != nil {
		say("EXIT %v", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
	say("EXIT ok")
	os.Exit(0)
}

type syncWriter struct {
	mu sync.Mutex
	w  *os.File
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// child is a running TestChildProcess.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
	done   chan error
}

func startChild(t *testing.T, mode string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 100), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return c
}

// expect returns the rest of the next stdout line that starts with prefix, skipping other
// lines. The timeout only keeps a broken child from hanging the test run.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q; stderr:\n%s", prefix, c.stderr)
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.TrimSpace(rest)
			}
		case <-timeout:
			t.Fatalf("child did not print %q", prefix)
		}
	}
}

func (c *child) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(c.cmd.Process.Pid, sig); err != nil {
		t.Fatal(err)
	}
}

// TestSIGTERM sends SIGTERM to a real service process while a request is in flight: the
// request completes, the process logs its shutdown and exits 0.
func TestSIGTERM(t *testing.T) {
	c := startChild(t, "graceful")
	addr := c.expect(t, "READY")

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, body, err := get(context.Background(), &http.Client{}, "http://"+addr+"/slow")
		res <- result{code, body, err}
	}()
	c.expect(t, "INFLIGHT")
	c.signal(t, syscall.SIGTERM)

	if r := <-res; r.err != nil || r.code != http.StatusOK || r.body != "done" {
		t.Errorf("in-flight request = %d %q %v, want 200 \"done\"", r.code, r.body, r.err)
	}
	if got := c.expect(t, "EXIT"); got != "ok" {
		t.Errorf("child: EXIT %s, want ok", got)
	}
	if err := <-c.done; err != nil {
		t.Fatalf("child exit: %v, want status 0; stderr:\n%s", err, c.stderr)
	}
	logs := c.stderr.String()
	t.Logf("child logs:\n%s", logs)
	for _, want := range []string{
		`msg="shutdown started" reason="signal terminated"`,
		`msg="shutdown: phase" phase=not_ready`,
		`msg="shutdown: drain delay"`,
		`msg="actor stopped" actor=http`,
		`msg="shutdown: hook done" phase=close hook=store`,
		`msg="shutdown complete"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("child logs lack %s", want)
		}
	}
}

// TestSecondSignalForcesExit sends SIGINT while the service is stuck in its shutdown and
// then SIGTERM: the second signal makes Run return a "forced" error at once.
func TestSecondSignalForcesExit(t *testing.T) {
	c := startChild(t, "hang-on-close")
	c.expect(t, "READY")
	c.signal(t, syscall.SIGINT)
	c.expect(t, "CLOSING")
	c.signal(t, syscall.SIGTERM)

	got := c.expect(t, "EXIT")
	if !strings.Contains(got, "forced") {
		t.Errorf("child: EXIT %s, want a forced error", got)
	}
	err := <-c.done
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("child exit = %v, want status 1; stderr:\n%s", err, c.stderr)
	}
	if logs := c.stderr.String(); !strings.Contains(logs, `msg="shutdown forced" signal=terminated`) {
		t.Errorf("child logs lack the forced shutdown:\n%s", logs)
	}
}
