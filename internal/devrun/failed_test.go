package devrun_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/devrun"
)

// A module of small programs without dependencies, which build in a second: services
// that report a configuration error the way svckit.Main does (one line on stderr, exit
// status 2), one that crashes, one that panics (Go's runtime exits with status 2 too),
// and one that serves /readyz on ADMIN_ADDR.
const (
	serveReady = `
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(http.ResponseWriter, *http.Request) {})
	_ = http.ListenAndServe(os.Getenv("ADMIN_ADDR"), mux)
`
	appMain = `package main

import (
	"fmt"
	"net/http"
	"os"
)

const mode = "bad"

func main() {
	if mode != "ok" {
		fmt.Fprintln(os.Stderr, "app: MODE: must be ok")
		os.Exit(2)
	}` + serveReady + `}
`
	envdMain = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	if os.Getenv("MODE") != "ok" {
		fmt.Println("{\"level\":\"INFO\",\"msg\":\"starting\"}")
		fmt.Fprintln(os.Stderr, "envd: MODE: want ok, got", os.Getenv("MODE"))
		os.Exit(2)
	}` + serveReady + `}
`
	crashMain = `package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "crash: boom")
	os.Exit(1)
}
`
	panicMain = `package main

func main() { panic("boom") }
`
	goodMain = `package main

import (
	"net/http"
	"os"
)

func main() {` + serveReady + `}
`
	failingYAML = `name: failing
services:
  - name: app
    package: ./cmd/app
  - name: envd
    package: ./cmd/envd
    env:
      MODE: bad
  - name: crash
    package: ./cmd/crash
  - name: panics
    package: ./cmd/panics
`
)

// failingModule writes the module into a new directory and returns it.
func failingModule(t *testing.T) string {
	t.Helper()
	t.Setenv("GOWORK", "off")
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"go.mod": "module example.com/failing\n\ngo 1.26\n", "svckit.yaml": failingYAML,
		"cmd/app/main.go": appMain, "cmd/envd/main.go": envdMain, "cmd/crash/main.go": crashMain,
		"cmd/panics/main.go": panicMain, "cmd/good/main.go": goodMain,
	})
	return dir
}

func startFailing(t *testing.T, opts devrun.Options) (*devrun.System, *syncWriter) {
	t.Helper()
	out := &syncWriter{}
	opts.Out, opts.Quiet, opts.StateDir, opts.Grace = out, true, t.TempDir(), 5*time.Second
	opts.Backoff = devrun.Backoff{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond, Stable: time.Minute}
	opts.SourcePoll = 100 * time.Millisecond
	sys, err := devrun.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	return sys, out
}

func ready(in *devrun.Instance) bool {
	if in.Status().State != devrun.StateRunning {
		return false
	}
	resp, err := http.Get("http://" + in.Addrs["admin"] + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestConfigErrorWaitReady: WaitReady returns as soon as the other instances are ready,
// with an error that names the failed one and its reason and matches ErrConfig.
func TestConfigErrorWaitReady(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	dir := failingModule(t)
	sys, out := startFailing(t, devrun.Options{Manifest: &devrun.Manifest{Name: "w", Dir: dir, Services: []devrun.Service{
		{Name: "app", Package: "./cmd/app", Replicas: 1},
		{Name: "good", Package: "./cmd/good", Replicas: 2},
	}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := sys.WaitReady(ctx)
	if !errors.Is(err, devrun.ErrConfig) || !strings.Contains(err.Error(), "app-1: configuration error: app: MODE: must be ok") {
		t.Fatalf("WaitReady = %v, want app-1's configuration error\n%s", err, out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("WaitReady took %s", took)
	}
	for _, id := range []string{"good-1", "good-2"} {
		if !ready(sys.Instance(id)) || !strings.Contains(out.String(), id+": ready") {
			t.Errorf("%s not ready, or not said so:\n%s", id, out)
		}
	}
}

// TestConfigError runs processes that exit with status 2 after one line on stderr: they
// are not restarted but failed, their reason is printed although the output is quiet,
// and they start again when restarted by hand, when their svckit.yaml entry changes, or
// when their source changes and builds. Crashes — also a panic, whose status is 2 — are
// restarted with backoff.
func TestConfigError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	dir := failingModule(t)
	sys, out := startFailing(t, devrun.Options{Dir: dir})
	app, envd, crash, panics := sys.Instance("app-1"), sys.Instance("envd-1"), sys.Instance("crash-1"), sys.Instance("panics-1")

	// A first build, reported service by service; the output is not a terminal, so
	// there is no line about the time the build is taking.
	for _, want := range []string{"a first build compiles every dependency", "app: built", "panics: built", "build done in"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out.String(), "still building") {
		t.Errorf("heartbeat lines in piped output:\n%s", out)
	}

	// Crashes are restarted, a panic too; configuration errors are not.
	eventually(t, "restarts of crash-1 and panics-1", func() bool {
		return crash.Status().Restarts >= 3 && panics.Status().Restarts >= 3
	})
	// Quiet output still says why an instance is crash-looping.
	for _, want := range []string{"crash-1 exited after", "crash: boom", "panics-1 exited after", "panic: boom"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("quiet output lacks %q:\n%s", want, out)
		}
	}
	for _, tc := range []struct {
		in     *devrun.Instance
		reason string
	}{
		{app, "app: MODE: must be ok"},
		{envd, "envd: MODE: want ok, got bad"},
	} {
		st := tc.in.Status()
		if st.State != devrun.StateFailed || st.Restarts != 0 || st.Reason != tc.reason || st.PID != 0 ||
			!strings.Contains(st.LastExit, "exit status 2 (configuration error): "+tc.reason) {
			t.Errorf("%s: %+v, want failed, never restarted, reason %q", tc.in.ID, st, tc.reason)
		}
		if want := tc.in.ID + " failed with a configuration error (exit status 2): " + tc.reason; !strings.Contains(out.String(), want) {
			t.Errorf("quiet output lacks %q:\n%s", want, out)
		}
	}
	for _, in := range []*devrun.Instance{crash, panics} {
		if st := in.Status(); st.State == devrun.StateFailed || st.Reason != "" {
			t.Errorf("%s is failed: %+v", in.ID, st)
		}
	}
	if got := sys.Logs.Query(devrun.LogFilter{Service: "app", Text: "not restarted until"}); len(got) != 1 {
		t.Errorf("app's log has %d lines saying it waits, want 1", len(got))
	}

	// Restarted by hand (the dashboard's button): it runs once more and fails again.
	if err := app.Kill(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "app-1 run again by hand", func() bool {
		st := app.Status()
		return st.Restarts == 1 && st.State == devrun.StateFailed
	})

	// A changed env in svckit.yaml starts envd again with it.
	yaml := strings.Replace(failingYAML, "MODE: bad", "MODE: ok", 1)
	if err := os.WriteFile(filepath.Join(dir, "svckit.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "envd-1 ready with its new env", func() bool { return ready(envd) })
	if !strings.Contains(out.String(), "svckit.yaml changed: envd runs with its new env and args") {
		t.Errorf("output does not say svckit.yaml was applied:\n%s", out)
	}

	// A source change that does not compile: said so, and app keeps waiting.
	src := filepath.Join(dir, "cmd", "app", "main.go")
	if err := os.WriteFile(src, []byte(strings.Replace(appMain, "const mode", "const mode mode", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed rebuild", func() bool {
		return strings.Contains(out.String(), "building app failed") && strings.Contains(out.String(), "waiting for the next change to app")
	})
	if st := app.Status(); st.State != devrun.StateFailed || st.Restarts != 1 {
		t.Errorf("app after a failed rebuild: %+v", st)
	}

	// A source change that fixes it: rebuilt, started, ready.
	if err := os.WriteFile(src, []byte(strings.Replace(appMain, `"bad"`, `"ok"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "app-1 ready after the rebuild", func() bool { return ready(app) })
	eventually(t, "app-1's ready line", func() bool { return strings.Contains(out.String(), "app-1: ready") })
	for _, want := range []string{"source of app changed: rebuilding", "app: built", "app-1: starting again"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if st := app.Status(); st.Restarts != 2 || st.Reason != "" {
		t.Errorf("app after the fix: %+v", st)
	}

	if err := sys.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, in := range sys.Instances {
		if st := in.Status(); st.State != devrun.StateStopped {
			t.Errorf("%s is %s after Stop", in.ID, st.State)
		}
	}
}
