package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/svckit/svckit/internal/testnet"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The shop's files, relative to this package.
const (
	shopDir        = "../../examples/shop"
	shopDockerfile = "../../examples/shop/Dockerfile"
	shopTree       = "../../deploy/k8s"
	repoRoot       = "../.."
)

// dockerBuildLine returns the go build command of a Dockerfile's build stage, its
// continuation lines joined.
func dockerBuildLine(t *testing.T, dockerfile string) string {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, "CGO_ENABLED="); i >= 0 && strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build") {
			return strings.TrimSpace(l[i:])
		}
	}
	t.Fatalf("%s: no RUN line with CGO_ENABLED=… go build", dockerfile)
	return ""
}

// buildShop builds every shop service and learns its settings from the binary's -help,
// as LoadSystem does. With docker each is built with the exact go build line of the
// shop's Dockerfile (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"), which compiles every
// dependency anew unless the build cache has them built so (the integration tests do
// that); otherwise they are built in one go build with the go command's defaults, from
// the build cache's objects.
func buildShop(t *testing.T, docker bool) (*System, map[string]string) {
	t.Helper()
	line := dockerBuildLine(t, shopDockerfile)
	for _, want := range []string{"CGO_ENABLED=0 ", " -trimpath", ` -ldflags="-s -w"`, " -o /out/service ", "./examples/shop/cmd/${SERVICE}"} {
		if !strings.Contains(line, want) {
			t.Fatalf("Dockerfile build line %q lacks %q", line, want)
		}
	}
	sys, err := describe(mustAbs(t, shopDir))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bins := map[string]string{}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for i := range sys.Services {
		s := &sys.Services[i]
		if want := "./cmd/" + s.Name; s.Package != want {
			t.Fatalf("service %s: package %s; the Dockerfile builds %s", s.Name, s.Package, want)
		}
		bins[s.Name] = filepath.Join(dir, s.Name)
		args = append(args, "./examples/shop/cmd/"+s.Name)
		if !docker {
			continue
		}
		cmdline := strings.NewReplacer("${SERVICE}", s.Name, "/out/service", bins[s.Name]).Replace(line)
		cmd := exec.Command("sh", "-c", cmdline)
		cmd.Dir = repoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmdline, err, b)
		}
	}
	if !docker {
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	for i := range sys.Services {
		s := &sys.Services[i]
		if s.Settings, err = Inspect(context.Background(), bins[s.Name]); err != nil {
			t.Fatal(err)
		}
	}
	return sys, bins
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestShop checks the shop's Dockerfile, its checked-in manifests and the renderer
// against the services' real configuration and behaviour (TestShopDockerBuild, an
// integration test, builds the services as the Dockerfile does).
func TestShop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the five shop services")
	}
	sys, bins := buildShop(t, false)

	t.Run("dockerfile", func(t *testing.T) {
		checkDockerfile(t, shopDockerfile, sys)
	})

	t.Run("manifests up to date", func(t *testing.T) {
		files, err := Render(sys, Options{})
		if err != nil {
			t.Fatal(err)
		}
		stale, err := files.Check(shopTree)
		if err != nil {
			t.Fatal(err)
		}
		if len(stale) > 0 {
			t.Errorf("deploy/k8s differs from what the services' configuration renders: %v\n"+
				"run: go run ./cmd/svckit deploy render examples/shop", stale)
		}
	})

	for _, ov := range Overlays {
		t.Run("overlay "+ov, func(t *testing.T) {
			objs, err := BuildTree(filepath.Join(shopTree, "overlays", ov))
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(objs, sys); err != nil {
				t.Errorf("the checked-in %s overlay does not match the services' configuration:\n%v", ov, err)
			}
			flat, err := RenderOverlay(sys, Options{}, ov)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ReadObjects(bytes.NewReader(flat))
			if err != nil {
				t.Fatal(err)
			}
			if err := sameObjects(objs, want); err != nil {
				t.Errorf("the %s tree and svckit deploy render -overlay %s differ: %v", ov, ov, err)
			}
		})
	}

	t.Run("renamed setting", func(t *testing.T) {
		objs, err := BuildTree(filepath.Join(shopTree, "overlays", Prod))
		if err != nil {
			t.Fatal(err)
		}
		renamed := cloneSystem(sys)
		orders := renamed.Service("orders")
		for i := range orders.Settings {
			if orders.Settings[i].Env == envStoreDSN {
				orders.Settings[i].Env = "STORE_URL"
			}
		}
		orders.Settings = append(orders.Settings, Setting{Name: "new-thing", Env: "NEW_THING", Type: "string", Required: true})
		err = Verify(objs, renamed)
		for _, want := range []string{"env STORE_DSN is not a setting of orders", "required setting -new-thing (NEW_THING) is not set"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Verify with a renamed and a new setting: %v; want %q", err, want)
			}
		}
	})

	t.Run("probes served", func(t *testing.T) {
		objs, err := BuildTree(filepath.Join(shopTree, "overlays", Prod))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"payments", "gateway"} {
			t.Run(name, func(t *testing.T) { serveProbes(t, bins[name], sys.Service(name), objs) })
		}
	})
}

// checkDockerfile checks a service Dockerfile against the services' settings: a Go
// builder of the module's Go version, a static distroless non-root final stage, and
// EXPOSE listing exactly the ports of the listeners' default addresses.
func checkDockerfile(t *testing.T, path string, sys *System) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	var froms, expose []string
	var user string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "FROM":
			froms = append(froms, f[1])
		case "EXPOSE":
			expose = append(expose, f[1:]...)
		case "USER":
			user = f[1]
		case "COPY":
			if strings.HasPrefix(f[1], "--from=") || len(f) < 3 {
				continue
			}
			for _, src := range f[1 : len(f)-1] {
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("%s: COPY %s: not in the build context (the repository root): %v", path, src, err)
				}
			}
		}
	}
	if len(froms) != 2 || froms[0] != "golang:"+goVer[1] {
		t.Errorf("FROM %v: want a golang:%s build stage and one final stage", froms, goVer[1])
	}
	if len(froms) > 0 && !strings.HasPrefix(froms[len(froms)-1], "gcr.io/distroless/static") || !strings.HasSuffix(froms[len(froms)-1], ":nonroot") {
		t.Errorf("final stage FROM %s: want distroless static, nonroot", froms[len(froms)-1])
	}
	if user != "nonroot:nonroot" {
		t.Errorf("USER %q, want nonroot:nonroot", user)
	}
	for _, s := range sys.Services {
		var want []string
		for _, env := range []string{envHTTPAddr, envGRPCAddr, envAdminAddr} {
			if p := s.Port(env); p != 0 {
				want = append(want, strconv.Itoa(p))
			}
		}
		if !slices.Equal(expose, want) {
			t.Errorf("EXPOSE %v; %s listens on %v (HTTP, gRPC, admin)", expose, s.Name, want)
		}
	}
}

func cloneSystem(s *System) *System {
	c := &System{Name: s.Name}
	for _, svc := range s.Services {
		svc.Settings = slices.Clone(svc.Settings)
		c.Services = append(c.Services, svc)
	}
	return c
}

// sameObjects compares two sets of objects by kind and name.
func sameObjects(got, want []Object) error {
	index := func(objs []Object) map[string]Object {
		m := map[string]Object{}
		for _, o := range objs {
			m[o.ID()] = o
		}
		return m
	}
	g, w := index(got), index(want)
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(w)) {
		if _, ok := g[id]; !ok {
			errs = append(errs, fmt.Errorf("%s missing", id))
		} else if !reflect.DeepEqual(g[id], w[id]) {
			errs = append(errs, fmt.Errorf("%s differs:\n got %v\nwant %v", id, g[id], w[id]))
		}
	}
	for id := range g {
		if _, ok := w[id]; !ok {
			errs = append(errs, fmt.Errorf("%s unexpected", id))
		}
	}
	return errors.Join(errs...)
}

// serveProbes starts a service binary with the environment its Deployment gives it —
// listeners moved to loopback, the store to SQLite, peers to loopback, no trace export —
// and checks that the admin listener serves the probe and metrics paths the manifests
// use, that the HTTP and gRPC ports listen, and that SIGTERM makes /readyz fail before
// the listeners close (the drain delay) and the process exit 0.
func serveProbes(t *testing.T, bin string, s *Service, objs []Object) {
	v := &verifier{byID: map[string]Object{}}
	for _, o := range objs {
		v.byID[o.ID()] = o
	}
	dep, ok := v.get("Deployment", s.Name)
	if !ok {
		t.Fatalf("no Deployment %s", s.Name)
	}
	env := map[string]string{}
	for _, x := range asList(containers(dep)[0]["env"]) {
		e := asMap(x)
		if val, ok := v.resolve("", e); ok {
			if val == madeValue {
				// A Secret's value made in the cluster (a NATS password): any will do.
				val = "made-in-the-cluster"
			}
			env[e["name"].(string)] = val
		}
	}
	// The service binds its ports itself.
	httpAddr := testnet.LowAddr(t)
	grpcAddr := testnet.LowAddr(t, httpAddr)
	env[envHTTPAddr], env[envGRPCAddr], env[envAdminAddr] = httpAddr, grpcAddr, testnet.LowAddr(t, httpAddr, grpcAddr)
	delete(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
	if _, ok := env[envStoreDSN]; ok {
		env[envStoreDSN] = "sqlite:" + filepath.Join(t.TempDir(), s.Name+".db")
	}
	mountMTLS(t, s.Name, env)
	if env[envNATSTLSCA] == mtlsDir+"/ca.crt" {
		env[envNATSTLSCA] = env[envTLSCA] // the same file of the mounted Secret
	}
	for k := range env {
		if strings.HasSuffix(k, "_GRPC_ADDRS") {
			env[k] = "127.0.0.1:1"
		}
	}
	env[envInstanceID] = s.Name + "-0"
	var list []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = list
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	admin := "http://" + env[envAdminAddr]
	get := func(path string) (int, string, error) {
		resp, err := http.Get(admin + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	for {
		if code, _, err := get(ReadinessPath); err == nil && code == http.StatusOK {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", s.Name, err, logs.String())
		case <-ctx.Done():
			t.Fatalf("%s not ready: %v\n%s", s.Name, ctx.Err(), logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, p := range []string{LivenessPath, ReadinessPath, MetricsPath} {
		code, body, err := get(p)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s%s: %d %v", admin, p, code, err)
		}
		if p == MetricsPath && !strings.Contains(body, "go_goroutines") {
			t.Errorf("GET %s: no Prometheus metrics in the body", p)
		}
	}
	for _, addr := range []string{env[envHTTPAddr], env[envGRPCAddr]} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		c.Close()
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sawNotReady := false
	for !sawNotReady {
		code, _, err := get(ReadinessPath)
		if err != nil {
			break // the admin listener closed
		}
		sawNotReady = code == http.StatusServiceUnavailable
		if !sawNotReady {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !sawNotReady {
		t.Errorf("after SIGTERM %s never answered %s with 503 before closing: no drain", s.Name, ReadinessPath)
	}
	if err := <-exited; err != nil {
		t.Errorf("%s exited with %v after SIGTERM\n%s", s.Name, err, tail(logs.String()))
	}
}

func tail(s string) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
