package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// offline makes the go command and go/packages resolve modules from the local cache only.
func offline(t *testing.T) {
	t.Setenv("GOFLAGS", "-mod=mod -buildvcs=false")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOWORK", "off")
}

func goTest(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("go", "test", "-count=1", "./...")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test ./... in %s: %v\n%s", dir, err, out)
	}
	t.Logf("%s", out)
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "gen") || !strings.Contains(errb.String(), "new") {
		t.Errorf("no args: code %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Errorf("unknown command: code %d, %q", code, errb.String())
	}
}

// TestNewInNewModule is `svckit new demo && cd demo && go test ./...` outside any module.
func TestNewInNewModule(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds and tests a new service")
	}
	offline(t)
	root := moduleRoot(t)
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run([]string{"new", "-svckit", root, "demo"}, &out, &errb); code != 0 {
		t.Fatalf("svckit new: code %d\n%s%s", code, out.String(), errb.String())
	}
	for _, f := range []string{"go.mod", "service.go", "impl.go", "service_test.go", "cmd/demo/main.go", "Dockerfile",
		"service_gen.go", "pbconv_gen.go", "pb/demo.proto", "pb/demo_pb_gen.go", "demo.openapi.json"} {
		if _, err := os.Stat(filepath.Join(dir, "demo", f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	goTest(t, filepath.Join(dir, "demo"))
	runScaffold(t, filepath.Join(dir, "demo"), filepath.Join(dir, "demo", "Dockerfile"))
	// The scaffold is current: gen -check passes in it.
	t.Chdir(filepath.Join(dir, "demo"))
	errb.Reset()
	if code := run([]string{"gen", "-check"}, &out, &errb); code != 0 {
		t.Errorf("gen -check in the new service: code %d: %s", code, errb.String())
	}
	// A second new into the same directory is refused.
	errb.Reset()
	t.Chdir(dir)
	if code := run([]string{"new", "demo"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "not empty") {
		t.Errorf("second new: code %d, %q", code, errb.String())
	}
}

// TestNewInsideModule scaffolds a service as a package of an existing module.
func TestNewInsideModule(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds and tests a new service")
	}
	offline(t)
	root := moduleRoot(t)
	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/shop\n\ngo 1.26\n\nrequire github.com/svckit/svckit v0.0.0\n\nreplace github.com/svckit/svckit => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "services"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(dir, "services"))
	var out, errb bytes.Buffer
	if code := run([]string{"new", "orders"}, &out, &errb); code != 0 {
		t.Fatalf("svckit new: code %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "example.com/shop/services/orders") {
		t.Errorf("output %q does not name the package", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "services", "orders", "go.mod")); err == nil {
		t.Error("a go.mod was written inside a module")
	}
	goTest(t, filepath.Join(dir, "services", "orders"))
	runScaffold(t, dir, filepath.Join(dir, "services", "orders", "Dockerfile"))
}

// TestGenCheck checks that gen -check names stale files and exits 1, and passes after gen.
func TestGenCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("loads packages")
	}
	offline(t)
	root := moduleRoot(t)
	dir := t.TempDir()
	sum, _ := os.ReadFile(filepath.Join(root, "go.sum"))
	files := map[string]string{
		"go.mod": "module example.com/c\n\ngo 1.26\n\nrequire github.com/svckit/svckit v0.0.0\n\nreplace github.com/svckit/svckit => " + root + "\n",
		"go.sum": string(sum),
		"svc/svc.go": `package svc

import "context"

// Service is served.
type Service interface {
	// Ping pings.
	Ping(ctx context.Context, n int) (int, error)
}
`,
	}
	for n, src := range files {
		p := filepath.Join(dir, n)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run([]string{"gen", "-check", "./svc"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "service_gen.go: stale") {
		t.Fatalf("check before gen: code %d, %q", code, errb.String())
	}
	if code := run([]string{"gen", "-v", "./svc"}, &out, &errb); code != 0 {
		t.Fatalf("gen: code %d, %s", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"gen", "-check", "./svc"}, &out, &errb); code != 0 {
		t.Fatalf("check after gen: code %d, %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"gen", "-check", "-v", "./..."}, &out, &errb); code != 0 || !strings.Contains(out.String(), "svc: up to date") {
		t.Fatalf("check ./...: code %d, %q %q", code, out.String(), errb.String())
	}
	// -type naming no interface of the package is an error.
	errb.Reset()
	if code := run([]string{"gen", "-check", "-type", "Nope", "./svc"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "svc/svc.go:1: -type Nope: package svc has no interface Nope") {
		t.Fatalf("check -type Nope: code %d, %q", code, errb.String())
	}
	// Change the interface: the generated files are stale again.
	src := strings.Replace(files["svc/svc.go"], "Ping(ctx context.Context, n int) (int, error)", "Ping(ctx context.Context, n int, s string) (int, error)", 1)
	if err := os.WriteFile(filepath.Join(dir, "svc/svc.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"gen", "-check", "./svc"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "stale") {
		t.Fatalf("check after change: code %d, %q", code, errb.String())
	}
	// An unsupported signature is an error naming file:line, the method and the reason.
	bad := strings.Replace(src, "n int, s string", "f func()", 1)
	if err := os.WriteFile(filepath.Join(dir, "svc/svc.go"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	errb.Reset()
	if code := run([]string{"gen", "./svc"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "svc/svc.go:8: Service.Ping: parameter f: func type func() is not supported") {
		t.Fatalf("gen with a bad signature: code %d, %q", code, errb.String())
	}
}

// TestRegenerateAfterChange changes the interface of a generated service, regenerates,
// and checks that only generated files changed and that the compiler names the method the
// implementation lacks.
func TestRegenerateAfterChange(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds a package")
	}
	offline(t)
	root := moduleRoot(t)
	dir := t.TempDir()
	sum, _ := os.ReadFile(filepath.Join(root, "go.sum"))
	iface := `package svc

import "context"

// Service is served.
type Service interface {
	// Ping pings.
	Ping(ctx context.Context, n int) (int, error)
}
`
	impl := `package svc

import "context"

// New returns the implementation.
func New() Service { return impl{} }

type impl struct{}

func (impl) Ping(_ context.Context, n int) (int, error) { return n, nil }
`
	for n, src := range map[string]string{
		"go.mod":      "module example.com/r\n\ngo 1.26\n\nrequire github.com/svckit/svckit v0.0.0\n\nreplace github.com/svckit/svckit => " + root + "\n",
		"go.sum":      string(sum),
		"svc/svc.go":  iface,
		"svc/impl.go": impl,
	} {
		p := filepath.Join(dir, n)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run([]string{"gen", "./svc"}, &out, &errb); code != 0 {
		t.Fatalf("gen: %s", errb.String())
	}
	build := exec.Command("go", "build", "./...")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build after gen: %v\n%s", err, b)
	}
	changed := strings.Replace(iface, "\tPing(ctx context.Context, n int) (int, error)\n", "\tPing(ctx context.Context, n int) (int, error)\n\t// Pong pongs.\n\tPong(ctx context.Context) error\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "svc/svc.go"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"gen", "-v", "./svc"}, &out, &errb); code != 0 {
		t.Fatalf("regen: %s", errb.String())
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if f, ok := strings.CutPrefix(l, "wrote "); ok && !strings.HasSuffix(f, "_gen.go") && !strings.HasSuffix(f, ".proto") && !strings.HasSuffix(f, ".openapi.json") {
			t.Errorf("regeneration wrote %s", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "svc/impl.go")); string(b) != impl {
		t.Error("impl.go changed")
	}
	build = exec.Command("go", "build", "./...")
	b, err := build.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "missing method Pong") {
		t.Fatalf("build after the change: %v\n%s\nwant the compiler to name the missing method Pong", err, b)
	}
}
