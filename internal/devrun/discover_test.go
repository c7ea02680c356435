package devrun_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/devrun"
)

// writeTree writes files (path → content) below dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	goMod      = "module example.com/sys\n\ngo 1.26\n"
	svckitMain = "package main\n\nimport (\n\t\"context\"\n\n\t\"github.com/svckit/svckit\"\n)\n\n" +
		"func main() { svckit.Main(\"x\", &svckit.Config{}, func(context.Context, *svckit.App) error { return nil }) }\n"
	plainMain = "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println() }\n"
)

// TestDiscover finds services in real directory trees with the go command.
func TestDiscover(t *testing.T) {
	tests := []struct {
		name  string
		sub   string // the directory to discover, below the tree's root
		files map[string]string
		want  []string // "name package [public]"
		err   string   // a part of the error; "ErrNoServices" for that error
	}{
		{
			name: "gateway is public",
			files: map[string]string{
				"go.mod": goMod, "cmd/gateway/main.go": svckitMain, "cmd/orders/main.go": svckitMain,
				"cmd/orders/flags.go": "package main\n", "cmd/tool/main.go": plainMain,
				"lib/lib.go":             "package lib\n\nimport _ \"github.com/svckit/svckit\"\n",
				"ignored/main.go":        "//go:build ignore\n\n" + svckitMain,
				"testdata/cmd/x/main.go": svckitMain,
			},
			want: []string{"gateway ./cmd/gateway public", "orders ./cmd/orders"},
		},
		{
			name:  "a single service is public",
			files: map[string]string{"go.mod": goMod, "cmd/greeter/main.go": svckitMain},
			want:  []string{"greeter ./cmd/greeter public"},
		},
		{
			name:  "without gateway none is public",
			files: map[string]string{"go.mod": goMod, "a/main.go": svckitMain, "b_svc/main.go": svckitMain},
			want:  []string{"a ./a", "b-svc ./b_svc"},
		},
		{
			name:  "the directory itself, named after it",
			sub:   "My_App",
			files: map[string]string{"go.mod": goMod, "My_App/main.go": svckitMain},
			want:  []string{"my-app . public"},
		},
		{
			name:  "a subdirectory of a module",
			sub:   "services",
			files: map[string]string{"go.mod": goMod, "services/orders/main.go": svckitMain, "other/main.go": svckitMain},
			want:  []string{"orders ./orders public"},
		},
		{
			name:  "no service",
			files: map[string]string{"go.mod": goMod, "cmd/tool/main.go": plainMain},
			err:   "ErrNoServices",
		},
		{
			name:  "not in a module",
			files: map[string]string{"cmd/orders/main.go": svckitMain},
			err:   "ErrNoServices",
		},
		{
			name:  "empty directory",
			files: map[string]string{},
			err:   "ErrNoServices",
		},
		{
			name:  "two services of one name",
			files: map[string]string{"go.mod": goMod, "a/orders/main.go": svckitMain, "b/orders/main.go": svckitMain},
			err:   `./a/orders and ./b/orders would both be service "orders"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			t.Setenv("GOFLAGS", "-mod=mod")
			t.Setenv("GOWORK", "off")
			writeTree(t, root, tc.files)
			dir := filepath.Join(root, tc.sub)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			m, err := devrun.Discover(context.Background(), dir)
			switch {
			case tc.err == "ErrNoServices":
				if !errors.Is(err, devrun.ErrNoServices) {
					t.Fatalf("err = %v, want ErrNoServices", err)
				}
				return
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if got := describe(m); strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("services = %q, want %q", got, tc.want)
			}
			if !m.Discovered || m.Dir != dir || m.Name == "" {
				t.Errorf("manifest: discovered %v, dir %q (want %q), name %q", m.Discovered, m.Dir, dir, m.Name)
			}
		})
	}
}

func describe(m *devrun.Manifest) []string {
	var out []string
	for _, s := range m.Services {
		d := fmt.Sprintf("%s %s", s.Name, s.Package)
		if s.Public {
			d += " public"
		}
		if s.Replicas != 1 {
			d += fmt.Sprintf(" x%d", s.Replicas)
		}
		out = append(out, d)
	}
	return out
}

// TestDiscoverShop finds the reference shop's five services as its svckit.yaml lists them.
func TestDiscoverShop(t *testing.T) {
	m, err := devrun.Discover(context.Background(), "../../examples/shop")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"catalog ./cmd/catalog", "gateway ./cmd/gateway public", "notifications ./cmd/notifications",
		"orders ./cmd/orders", "payments ./cmd/payments"}
	if got := describe(m); strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("services = %q, want %q", got, want)
	}
	if m.Name != "shop" {
		t.Errorf("name = %q", m.Name)
	}
}

// TestLoad reads svckit.yaml where there is one and discovers services where there is not.
func TestLoad(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"go.mod":                   goMod,
		"withyaml/svckit.yaml":     "name: y\nservices: [{name: a, package: ./cmd/a, replicas: 2}]\n",
		"withyaml/cmd/b/main.go":   svckitMain,
		"without/cmd/b/main.go":    svckitMain,
		"badyaml/svckit.yaml":      "name: y\nservices: [{name: a}]\n",
		"badyaml/cmd/b/main.go":    svckitMain,
		"nothing/cmd/tool/main.go": plainMain,
	})
	tests := []struct {
		dir        string
		want       []string
		discovered bool
		err        string
	}{
		{dir: "withyaml", want: []string{"a ./cmd/a x2"}},
		{dir: "without", want: []string{"b ./cmd/b public"}, discovered: true},
		{dir: "badyaml", err: "services[0] (a).package: is required"},
		{dir: "nothing", err: "ErrNoServices"},
		{dir: "missing", err: "no such file or directory"},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			m, err := devrun.Load(context.Background(), filepath.Join(root, tc.dir))
			switch {
			case tc.err == "ErrNoServices":
				if !errors.Is(err, devrun.ErrNoServices) {
					t.Fatalf("err = %v, want ErrNoServices", err)
				}
				return
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, devrun.ErrNoServices) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if got := describe(m); strings.Join(got, "; ") != strings.Join(tc.want, "; ") || m.Discovered != tc.discovered {
				t.Errorf("services = %q (discovered %v), want %q (%v)", got, m.Discovered, tc.want, tc.discovered)
			}
		})
	}
}

// TestDefaultDir is the directory `svckit dev` runs without an argument.
func TestDefaultDir(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"user/svckit.yaml":                    "name: u\n",
		"module/go.mod":                       goMod,
		"module/cmd/a/main.go":                svckitMain,
		"lookalike/go.mod":                    goMod,
		"lookalike/examples/shop/svckit.yaml": "name: shop\n",
	})
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, wd, want string }{
		{"svckit.yaml here", filepath.Join(root, "user"), filepath.Join(root, "user")},
		{"a module without one", filepath.Join(root, "module"), filepath.Join(root, "module")},
		{"another module's examples/shop", filepath.Join(root, "lookalike"), filepath.Join(root, "lookalike")},
		{"an empty directory", root, root},
		{"svckit's repository", repo, filepath.Join(repo, "examples", "shop")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := devrun.DefaultDir(tc.wd); got != tc.want {
				t.Errorf("DefaultDir(%s) = %s, want %s", tc.wd, got, tc.want)
			}
		})
	}
	t.Chdir(repo)
	f, err := devrun.ParseFlags(nil, os.Stderr)
	if err != nil || f.Dir != filepath.Join("examples", "shop") {
		t.Errorf("ParseFlags() in the repository: dir %q, %v; want examples/shop", f.Dir, err)
	}
}

// TestStartDiscovered runs a directory without svckit.yaml: its one service main package
// is built, started and public, and the output says what was found.
func TestStartDiscovered(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a service")
	}
	out := &syncWriter{}
	ctx := context.Background()
	sys, err := devrun.Start(ctx, devrun.Options{Dir: "testdata/discovered", StateDir: t.TempDir(), Out: out, Quiet: true,
		Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sys.Stop(ctx) }()
	readyCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(sys.Instances) != 1 || sys.Instances[0].ID != "greeter-1" || sys.PublicURL() == "" {
		t.Fatalf("instances %d, public URL %q", len(sys.Instances), sys.PublicURL())
	}
	got := out.String()
	for _, want := range []string{
		"no svckit.yaml in testdata/discovered; running the service main packages found there:",
		"greeter  ./cmd/greeter  (public)",
		"write testdata/discovered/svckit.yaml to choose the services",
		"greeter: built", "greeter-1: ready",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestListenMustBeLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:7070", true}, {"[::1]:7070", true}, {"localhost:0", true}, {"127.0.0.2:80", true},
		{"0.0.0.0:7070", false}, {":7070", false}, {"[::]:7070", false}, {"192.168.1.4:7070", false},
		{"example.com:7070", false}, {"7070", false},
	} {
		_, err := devrun.ParseFlags([]string{"-listen", tc.addr}, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("-listen %s: err = %v, want ok %v", tc.addr, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("-listen %s: error on several lines: %v", tc.addr, err)
		}
	}
}
