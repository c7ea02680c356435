package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"text/template"

	"github.com/svckit/svckit/internal/gen"
)

const svckitModule = "github.com/svckit/svckit"

// runNew is `svckit new [-module PATH] [-svckit DIR] NAME`.
func runNew(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("svckit new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	module := fs.String("module", "", "module path when NAME becomes a new module (default: NAME)")
	local := fs.String("svckit", "", "directory of a svckit checkout to use through a replace directive in a new module (default: the checkout this command was built from, if any)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: svckit new [-module PATH] [-svckit DIR] NAME\n\nScaffolds the service NAME in the directory NAME: an interface with one example method,\nan implementation stub, generated transports, a main with config, health, metrics,\ntracing and graceful shutdown, a test and a Dockerfile. Inside a Go module the service\nbecomes a package of that module; elsewhere NAME becomes a new module.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	if err := scaffold(fs.Arg(0), *module, *local, stdout); err != nil {
		fmt.Fprintf(stderr, "svckit new: %v\n", err)
		return 1
	}
	return 0
}

// scaffoldData fills the templates.
type scaffoldData struct {
	Name       string // service name, as given
	Pkg        string // Go package name
	ImportPath string // import path of the service package
	RelDir     string // the service directory relative to the module root, "." for a new module
}

func scaffold(name, module, local string, stdout io.Writer) error {
	dir, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s exists and is not empty", name)
	}
	d := scaffoldData{Name: filepath.Base(dir), Pkg: packageName(filepath.Base(dir))}
	if !token.IsIdentifier(d.Pkg) {
		return fmt.Errorf("%q does not make a Go package name; use letters and digits", name)
	}
	modRoot, modPath, err := findModule(filepath.Dir(dir))
	if err != nil {
		return err
	}
	newModule := modRoot == ""
	if newModule {
		if module == "" {
			module = d.Name
		}
		d.ImportPath, d.RelDir = module, "."
	} else {
		rel, err := filepath.Rel(modRoot, dir)
		if err != nil {
			return err
		}
		d.RelDir = filepath.ToSlash(rel)
		d.ImportPath = modPath + "/" + d.RelDir
	}
	files := map[string]string{
		"service.go":                            serviceTmpl,
		"impl.go":                               implTmpl,
		"service_test.go":                       testTmpl,
		filepath.Join("cmd", d.Name, "main.go"): mainTmpl,
		"Dockerfile":                            dockerTmpl,
	}
	if newModule {
		gomod, gosum, err := newGoMod(module, local)
		if err != nil {
			return err
		}
		files["go.mod"] = gomod
		if gosum != "" {
			files["go.sum"] = gosum
		}
	}
	for rel, tmpl := range files {
		var b bytes.Buffer
		if err := template.Must(template.New(rel).Parse(tmpl)).Execute(&b, d); err != nil {
			return err
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	out, err := gen.Generate(dir, gen.Options{})
	if err != nil {
		return fmt.Errorf("generating: %w", err)
	}
	if _, err := gen.Write(out); err != nil {
		return err
	}
	if newModule {
		cmd := exec.Command("go", "mod", "tidy")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go mod tidy in %s: %v\n%s", name, err, b)
		}
	}
	fmt.Fprintf(stdout, "created %s (package %s)\n\n  cd %s\n  go test ./...\n  go run ./cmd/%s          # HTTP :8080, gRPC :8081, admin :9090\n\nEdit service.go to change the API, then run go generate; write the logic in impl.go.\n",
		name, d.ImportPath, name, d.Name)
	return nil
}

// packageName makes a Go package name of a service name: lower case, letters and digits.
func packageName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' && b.Len() > 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// findModule returns the root and path of the module containing dir, or "" outside any.
func findModule(dir string) (root, path string, err error) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
					return d, strings.Trim(strings.TrimSpace(rest), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s has no module line", filepath.Join(d, "go.mod"))
		}
		if filepath.Dir(d) == d {
			return "", "", nil
		}
	}
}

// newGoMod returns go.mod (and go.sum, when svckit comes from a local checkout) of a new
// module that requires svckit.
func newGoMod(module, local string) (string, string, error) {
	released := ""
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == svckitModule && strings.HasPrefix(bi.Main.Version, "v") {
		released = bi.Main.Version // installed with go install ...@version
	}
	if local == "" && released == "" {
		local = checkoutDir()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n\ngo 1.26\n\n", module)
	if local != "" {
		abs, err := filepath.Abs(local)
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(&b, "require %s v0.0.0\n\nreplace %s => %s\n", svckitModule, svckitModule, abs)
		sum, _ := os.ReadFile(filepath.Join(abs, "go.sum"))
		return b.String(), string(sum), nil
	}
	if released == "" {
		return "", "", errors.New("cannot tell which svckit to use: pass -svckit DIR (a checkout), or install svckit at a version with go install github.com/svckit/svckit/cmd/svckit@VERSION")
	}
	fmt.Fprintf(&b, "require %s %s\n", svckitModule, released)
	return b.String(), "", nil
}

// checkoutDir returns the svckit checkout this command was built from, if it still exists.
func checkoutDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(data), "module "+svckitModule+"\n") {
		return ""
	}
	return root
}

const serviceTmpl = `// Package {{.Pkg}} is the {{.Name}} service. Its API is the Service interface below:
// svckit gen turns it into typed endpoints, HTTP and gRPC transports and clients, a .proto
// and an OpenAPI document (the *_gen.go files, pb/ and {{.Pkg}}.openapi.json). Change the
// interface, then run go generate.
package {{.Pkg}}

//go:generate go run github.com/svckit/svckit/cmd/svckit gen

import "context"

// Service is the {{.Name}} service. Doc comments here become its API documentation.
type Service interface {
	// Hello greets someone by name.
	//
	//svckit:http GET /hello/{name}
	Hello(ctx context.Context, name string) (greeting string, err error)
}
`

const implTmpl = `package {{.Pkg}}

import (
	"context"

	"github.com/svckit/svckit/svcerr"
)

// New returns the {{.Name}} service.
func New() Service { return &service{} }

// service implements Service. Give it its dependencies (a store, clients of other
// services) through New.
type service struct{}

// Hello greets someone by name.
func (s *service) Hello(ctx context.Context, name string) (string, error) {
	return "", svcerr.New(svcerr.Unimplemented, "Hello is not implemented yet: write it in impl.go")
}
`

const testTmpl = `package {{.Pkg}}

import (
	"context"
	"io"
	"os"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/svcerr"
)

// TestHello serves the service on loopback ports, as main does, and calls it with the
// generated HTTP and gRPC clients. Change what it expects when you implement Hello.
func TestHello(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	app, err := svckit.New(ctx, "{{.Name}}", &svckit.Config{}, svckit.Options{
		Stdout:  io.Discard,
		Args:    []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"},
		Env:     func(string) (string, bool) { return "", false },
		Signals: []os.Signal{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(app, New()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	httpAddr, err := app.Addr(ctx, "http")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, err := app.Addr(ctx, "grpc")
	if err != nil {
		t.Fatal(err)
	}
	he, err := NewHTTPClient("http://" + httpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for name, c := range map[string]Service{"http": NewClient(he), "grpc": NewClient(NewGRPCClient(cc))} {
		_, err := c.Hello(ctx, "world")
		if svcerr.KindOf(err) != svcerr.Unimplemented {
			t.Errorf("%s: Hello: %v, want unimplemented", name, err)
		}
	}
}
`

const mainTmpl = `// Command {{.Name}} serves the {{.Name}} service over HTTP and gRPC, with configuration
// (flags, environment, file; -help lists them), JSON logs, Prometheus metrics, OpenTelemetry
// tracing, health checks on the admin port and graceful shutdown, all from svckit.Main.
package main

import (
	"context"

	"github.com/svckit/svckit"

	"{{.ImportPath}}"
)

func main() {
	svckit.Main("{{.Name}}", &svckit.Config{}, func(_ context.Context, app *svckit.App) error {
		return {{.Pkg}}.Serve(app, {{.Pkg}}.New())
	})
}
`

const dockerTmpl = `# syntax=docker/dockerfile:1
# Builds the {{.Name}} service into a small, static, non-root image. Build from the module root:
#   docker build -f {{if ne .RelDir "."}}{{.RelDir}}/{{end}}Dockerfile -t {{.Name}} .
# (A module whose go.mod replaces svckit with a local directory needs that directory in the
# build context: vendor it with go mod vendor, or depend on a released svckit.)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/{{.Name}} ./{{if ne .RelDir "."}}{{.RelDir}}/{{end}}cmd/{{.Name}}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/{{.Name}} /{{.Name}}
USER nonroot:nonroot
# HTTP, gRPC, admin (/healthz, /readyz, /metrics).
EXPOSE 8080 8081 9090
ENTRYPOINT ["/{{.Name}}"]
`
