package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/svckit/svckit/natsserver"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// modMod lets the go command and go/packages add the requirements a test module lacks to
// its go.mod as they go (-mod=mod), downloading what the module cache lacks through the
// usual GOPROXY, and keeps a workspace around the checkout out of the test's modules.
func modMod(t *testing.T) {
	t.Setenv("GOFLAGS", "-mod=mod -buildvcs=false")
	t.Setenv("GOWORK", "off")
}

// defaultEnv is the environment without the go command settings a developer or CI may
// have set (GOFLAGS, GOPROXY, a workspace, …): what a user who just installed Go has. The
// module and build caches stay, so that the test uses the machine's.
func defaultEnv() []string {
	drop := map[string]bool{"GOFLAGS": true, "GOPROXY": true, "GONOPROXY": true, "GOPRIVATE": true,
		"GONOSUMDB": true, "GONOSUMCHECK": true, "GOSUMDB": true, "GOWORK": true, "GOINSECURE": true}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			env = append(env, kv)
		}
	}
	return env
}

// goIn runs the go command in dir with env and fails the test, with the output, if it fails.
func goIn(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// buildSvckit builds this command into a temporary directory, as go build or go install
// in a checkout does, and returns the binary's path.
func buildSvckit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "svckit")
	goIn(t, ".", defaultEnv(), "build", "-o", bin, ".")
	return bin
}

// readTree returns every file under dir (relative, slash-separated) with its contents, and
// every directory with "/" as its contents.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			tree[rel] = "/"
			return nil
		}
		b, err := os.ReadFile(p)
		tree[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// diffTrees lists the paths that differ between two readTree results.
func diffTrees(before, after map[string]string) []string {
	var diff []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			diff = append(diff, p+" removed")
		} else if a != b {
			diff = append(diff, p+" changed")
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diff = append(diff, p+" added")
		}
	}
	sort.Strings(diff)
	return diff
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

// TestNewOutsideModule is the quick start of a user who built svckit from a checkout:
// `svckit new -module example.com/inventory inventory` outside any module and with the go
// command's default settings, then go generate, go vet and go test in the new module.
// (The integration test TestNewWithBatteries does the same with -with: that compiles
// SQLite, PostgreSQL's driver and the NATS server, minutes on a fresh machine.)
func TestNewOutsideModule(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds and tests a new service")
	}
	newOutsideModule(t, "")
}

// newOutsideModule runs the built command as `svckit new -module example.com/inventory
// -with WITH inventory` in an empty directory outside any module, with the go command's
// default settings; checks the module it makes; runs go generate, go vet and go test in
// it, which must all pass at once and change nothing; runs the service's command (with an
// embedded NATS server when it has a bus); and checks that a second new into the same
// directory is refused and changes nothing.
func newOutsideModule(t *testing.T, with string) {
	bin := buildSvckit(t)
	bat, err := parseWith(with)
	if err != nil {
		t.Fatal(err)
	}
	env := defaultEnv()
	dir := t.TempDir()
	cmd := exec.Command(bin, "new", "-module", "example.com/inventory", "-with", with, "inventory")
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("svckit new: %v\n%s", err, out)
	}
	for _, want := range []string{"module example.com/inventory", "=> " + moduleRoot(t), "cd inventory", "go test ./..."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("svckit new printed %q, without %q", out, want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("beside the service: %v; want only inventory", ents)
	}
	svc := filepath.Join(dir, "inventory")
	files := []string{"go.mod", "go.sum", "service.go", "impl.go", "service_test.go", "cmd/inventory/main.go", "Dockerfile",
		"service_gen.go", "pbconv_gen.go", "pb/inventory/v1/inventory.proto", "pb/inventory_pb_gen.go", "inventory.openapi.json"}
	if bat.Store {
		files = append(files, "migrations/001_init.sql")
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(svc, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(svc, "go.mod"))
	for _, want := range []string{"module example.com/inventory\n", "replace github.com/svckit/svckit => " + moduleRoot(t) + "\n", "tool github.com/svckit/svckit/cmd/svckit\n"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}
	before := readTree(t, svc)
	goIn(t, svc, env, "generate", "./...")
	goIn(t, svc, env, "vet", "./...")
	t.Log(goIn(t, svc, env, "test", "-count=1", "./..."))
	if diff := diffTrees(before, readTree(t, svc)); len(diff) > 0 {
		t.Errorf("go generate, vet and test changed the new module: %v", diff)
	}
	var settings []string
	if bat.Store {
		settings = append(settings, "STORE_DSN=sqlite:"+filepath.Join(t.TempDir(), "inventory.db"))
	}
	if bat.Bus {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		nats, err := natsserver.Start(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		defer nats.Shutdown(context.Background())
		settings = append(settings, "NATS_URL="+nats.ClientURL())
	}
	for _, p := range bat.Peers {
		settings = append(settings, p.Env+"=127.0.0.1:1")
	}
	runScaffold(t, svc, filepath.Join(svc, "Dockerfile"), false, settings...)
	before = readTree(t, dir)
	cmd = exec.Command(bin, "new", "inventory")
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not empty") {
		t.Errorf("second new: %v, %s", err, out)
	}
	if diff := diffTrees(before, readTree(t, dir)); len(diff) > 0 {
		t.Errorf("a refused new changed %v", diff)
	}
}

// TestNewInsideModule scaffolds two services as packages of a module that did not use
// svckit: the first adds the requirement, the replace directive and the tool to its
// go.mod, the second finds them there; go generate, vet and test then pass at once.
func TestNewInsideModule(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds and tests a new service")
	}
	newInsideModule(t, []string{"payments"})
}

// newInsideModule scaffolds the service orders, then one service for each of more (svckit
// new's arguments, space-separated), in the directory services of a module example.com/shop
// whose go.mod names nothing else; checks what the first added to go.mod and that the
// others added nothing; runs go generate, vet and test in the module; and runs orders.
func newInsideModule(t *testing.T, more []string) {
	root := moduleRoot(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/shop\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "services"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(dir, "services"))
	var out, errb bytes.Buffer
	if code := run([]string{"new", "orders"}, &out, &errb); code != 0 {
		t.Fatalf("svckit new orders: code %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"example.com/shop/services/orders", "requires github.com/svckit/svckit => " + root, "tool github.com/svckit/svckit/cmd/svckit"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	for _, want := range []string{"github.com/svckit/svckit v0.0.0", "replace github.com/svckit/svckit => " + root + "\n", "tool github.com/svckit/svckit/cmd/svckit\n"} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "services", "orders", "go.mod")); err == nil {
		t.Error("a go.mod was written inside a module")
	}
	for _, args := range more {
		out.Reset()
		if code := run(append([]string{"new"}, strings.Fields(args)...), &out, &errb); code != 0 {
			t.Fatalf("svckit new %s: code %d\n%s%s", args, code, out.String(), errb.String())
		}
		if strings.Contains(out.String(), "go.mod:") {
			t.Errorf("svckit new %s added to go.mod again: %q", args, out.String())
		}
	}
	if gomod2, _ := os.ReadFile(filepath.Join(dir, "go.mod")); strings.Count(string(gomod2), "svckit/cmd/svckit") != 1 || strings.Count(string(gomod2), "replace") != 1 {
		t.Errorf("go.mod after the other services:\n%s", gomod2)
	}
	env := defaultEnv()
	before := readTree(t, dir)
	goIn(t, dir, env, "generate", "./...")
	goIn(t, dir, env, "vet", "./...")
	t.Log(goIn(t, dir, env, "test", "-count=1", "./..."))
	if diff := diffTrees(before, readTree(t, dir)); len(diff) > 0 {
		t.Errorf("go generate, vet and test changed the module: %v", diff)
	}
	runScaffold(t, dir, filepath.Join(dir, "services", "orders", "Dockerfile"), false)
}

// TestNewLeavesNothingOnFailure checks that svckit new, failing early or in a later step,
// leaves the directory it ran in as it was: no service directory, no temporary directory,
// go.mod and go.sum of an enclosing module unchanged.
func TestNewLeavesNothingOnFailure(t *testing.T) {
	// broken is a module whose go mod tidy fails, without the network: a package imports
	// a module replaced by a directory that does not exist.
	broken := map[string]string{
		"go.mod":     "module example.com/shop\n\ngo 1.26\n\nrequire example.com/missing v0.0.0\n\nreplace example.com/missing => ./missing\n",
		"go.sum":     "",
		"bad/bad.go": "package bad\n\nimport _ \"example.com/missing/x\"\n",
	}
	tests := []struct {
		name  string
		files map[string]string // written before svckit new runs
		args  []string
		want  string // in svckit new's error
	}{
		{name: "name is not a package name", args: []string{"123"}, want: "does not make a Go package name"},
		{name: "name is a keyword", args: []string{"func"}, want: "does not make a Go package name"},
		{name: "not a checkout", args: []string{"-svckit", ".", "inventory"}, want: "not a svckit checkout"},
		{name: "target not empty", files: map[string]string{"inventory/notes.txt": "mine"}, args: []string{"inventory"}, want: "exists and is not empty"},
		{name: "target is a file", files: map[string]string{"inventory": "mine"}, args: []string{"inventory"}, want: "exists and is not a directory"},
		{name: "no parent", args: []string{"services/inventory"}, want: "parent directory does not exist"},
		{name: "go mod tidy fails in a new module", args: []string{"-module", "not a module path", "inventory"}, want: "go mod tidy"},
		{name: "go mod tidy fails into an empty directory", files: map[string]string{"inventory/": ""}, args: []string{"-module", "not a module path", "inventory"}, want: "go mod tidy"},
		{name: "go mod tidy fails inside a module", files: broken, args: []string{"inventory"}, want: "missing/go.mod"},
		{name: "-module inside a module", files: broken, args: []string{"-module", "example.com/x", "inventory"}, want: "is inside the module example.com/shop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, src := range tt.files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if strings.HasSuffix(name, "/") {
					if err := os.MkdirAll(p, 0o755); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := readTree(t, dir)
			t.Chdir(dir)
			var out, errb bytes.Buffer
			if code := run(append([]string{"new"}, tt.args...), &out, &errb); code != 1 || !strings.Contains(errb.String(), tt.want) {
				t.Errorf("svckit new %s: code %d, %q; want 1 and %q", strings.Join(tt.args, " "), code, errb.String(), tt.want)
			}
			if diff := diffTrees(before, readTree(t, dir)); len(diff) > 0 {
				t.Errorf("left behind: %v", diff)
			}
		})
	}
	// Interrupted (Ctrl-C cancels the context) while the go command runs.
	root := moduleRoot(t)
	for _, files := range []map[string]string{nil, broken} {
		dir := t.TempDir()
		for name, src := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before := readTree(t, dir)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		t.Chdir(dir)
		if err := scaffold(ctx, newOptions{name: "inventory", local: root}, io.Discard); !errors.Is(err, context.Canceled) {
			t.Errorf("interrupted: %v", err)
		}
		if diff := diffTrees(before, readTree(t, dir)); len(diff) > 0 {
			t.Errorf("interrupted, left behind: %v", diff)
		}
	}
}

// TestGenCheck checks that gen -check names stale files and exits 1, and passes after gen.
func TestGenCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("loads packages")
	}
	modMod(t)
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
	modMod(t)
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
