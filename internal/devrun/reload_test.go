package devrun_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/devrun"
)

const versionMain = `package main

import (
	"fmt"
	"net/http"
	"os"
)

const version = "%s"

func main() {
	go func() {
		_ = http.ListenAndServe(os.Getenv("HTTP_ADDR"), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, version)
		}))
	}()` + serveReady + `}
`

// TestReload: with Options.Reload, a running service whose source changes is rebuilt and
// its process replaced by one of the new program; a change that does not build leaves the
// running process serving.
func TestReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	t.Setenv("GOWORK", "off")
	dir := t.TempDir()
	main := filepath.Join(dir, "cmd/ver/main.go")
	writeTree(t, dir, map[string]string{"go.mod": "module example.com/ver\n\ngo 1.26\n",
		"cmd/ver/main.go": strings.Replace(versionMain, "%s", "one", 1)})
	sys, out := startFailing(t, devrun.Options{Reload: true, Manifest: &devrun.Manifest{Name: "r", Dir: dir,
		Services: []devrun.Service{{Name: "ver", Package: "./cmd/ver", Replicas: 1}}}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sys.WaitReady(ctx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	in := sys.Instance("ver-1")
	version := func() string {
		resp, err := http.Get("http://" + in.Addrs["http"])
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	eventually(t, "version one", func() bool { return version() == "one" })
	first := in.Status().PID

	// A change that does not compile: reported, and the process keeps serving.
	if err := os.WriteFile(main, []byte("package main\n\nfunc main() { undefined() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the build error reported", func() bool { return strings.Contains(out.String(), "undefined: undefined") })
	if v, pid := version(), in.Status().PID; v != "one" || pid != first {
		t.Fatalf("after a failed build: version %q, pid %d (was %d)", v, pid, first)
	}

	// A change that builds: the new program serves.
	if err := os.WriteFile(main, []byte(strings.Replace(versionMain, "%s", "two", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "version two", func() bool { return version() == "two" })
	if in.Status().PID == first {
		t.Fatal("version two served by the first process")
	}
	if !strings.Contains(out.String(), "stopped to run the rebuilt program") {
		t.Errorf("the replacement is not reported:\n%s", out)
	}
}
