package main

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkStatic fails the test if the binary at bin needs a dynamic loader or shared
// libraries, or kept its symbol table.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table: -ldflags -s was not applied", bin)
	}
}

// dockerfileTarget reads the Dockerfile that svckit new wrote and returns the package its
// go build line builds, after checking that the files it copies before the source exist
// in the build context, the module root.
func dockerfileTarget(t *testing.T, dockerfile, modRoot string) string {
	t.Helper()
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	src := strings.ReplaceAll(string(b), "\\\n", " ")
	target := ""
	for _, l := range strings.Split(src, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 2 && f[0] == "COPY" && !strings.HasPrefix(f[1], "--"):
			for _, name := range f[1 : len(f)-1] {
				if name == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(modRoot, name)); err != nil {
					t.Errorf("Dockerfile: %s copies %s, which is not in the build context %s: %v", l, name, modRoot, err)
				}
			}
		case strings.Contains(l, " go build "):
			target = f[len(f)-1]
		}
	}
	if !strings.HasPrefix(target, "./") {
		t.Fatalf("Dockerfile has no go build line with a package: %s", src)
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER nonroot", "EXPOSE 8080 8081 9090", "ENTRYPOINT"} {
		if !strings.Contains(src, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	return target
}

// runScaffold builds the package the scaffold's Dockerfile builds, from the module root,
// runs it on loopback ports and checks what its main promises: the service answers on HTTP
// (Hello is unimplemented: 501, problem+json), health and readiness and metrics on the
// admin port, JSON logs, and a clean exit on SIGTERM. env is added to the service's
// environment (its batteries' settings). With docker it builds as the
// Dockerfile does (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"), which compiles every
// dependency anew unless the build cache has them built so: the integration tests do
// that; otherwise it builds with the go command's defaults and the build cache's objects.
func runScaffold(t *testing.T, modRoot, dockerfile string, docker bool, env ...string) {
	t.Helper()
	target := dockerfileTarget(t, dockerfile, modRoot)
	bin := filepath.Join(t.TempDir(), "svc")
	build := exec.Command("go", "build", "-o", bin, target)
	if docker {
		b, err := os.ReadFile(dockerfile)
		if err != nil {
			t.Fatal(err)
		}
		line := regexp.MustCompile(`CGO_ENABLED=0 go build[^\n]* -o (\S+) `).FindStringSubmatch(string(b))
		if line == nil {
			t.Fatalf("%s has no CGO_ENABLED=0 go build -o line", dockerfile)
		}
		build = exec.Command("sh", "-c", strings.Replace(line[0], " -o "+line[1]+" ", " -o "+bin+" ", 1)+target)
	}
	build.Dir = modRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", target, err, out)
	}
	if docker {
		checkStatic(t, bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	lines := bufio.NewScanner(stdout)
	var ready map[string]any
	for ready == nil && lines.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON: %s", lines.Text())
		}
		if rec["msg"] == "service ready" {
			ready = rec
		}
	}
	if ready == nil {
		t.Fatalf("no 'service ready' log line: %v", lines.Err())
	}
	httpAddr, _ := ready["http_addr"].(string)
	adminAddr, _ := ready["admin_addr"].(string)
	if httpAddr == "" || adminAddr == "" || ready["grpc_addr"] == nil {
		t.Fatalf("ready line without addresses: %v", ready)
	}
	get := func(url string) (int, string, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ctype, body := get("http://" + httpAddr + "/hello/world"); code != http.StatusNotImplemented || ctype != "application/problem+json" {
		t.Errorf("GET /hello/world: %d %s %s; want 501 problem+json", code, ctype, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, body := get("http://" + adminAddr + p); code != http.StatusOK {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if code, _, body := get("http://" + adminAddr + "/metrics"); code != http.StatusOK || !strings.Contains(body, `svckit_requests_total{`) || !strings.Contains(body, `method="Hello"`) {
		t.Errorf("GET /metrics: %d, no svckit_requests_total for Hello:\n%.2000s", code, body)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := false
	for lines.Scan() {
		if strings.Contains(lines.Text(), `"msg":"service stopped"`) {
			stopped = true
		}
	}
	if err := cmd.Wait(); err != nil || !stopped {
		t.Errorf("after SIGTERM: exit %v, 'service stopped' logged: %t", err, stopped)
	}
}

// TestParseWith checks -with: the batteries, outbox implying store and bus, peers'
// names, and the errors.
func TestParseWith(t *testing.T) {
	users := peer{Name: "users", Field: "Users", Param: "usersConn", Env: "USERS_GRPC_ADDRS"}
	profiles := peer{Name: "user-profiles2", Field: "UserProfiles2", Param: "userProfiles2Conn", Env: "USER_PROFILES2_GRPC_ADDRS"}
	tests := []struct {
		with string
		want batteries
		err  string
	}{
		{with: "", want: batteries{}},
		{with: "store", want: batteries{Store: true}},
		{with: "bus", want: batteries{Bus: true}},
		{with: "outbox", want: batteries{Store: true, Bus: true, Outbox: true}},
		{with: "store, bus,outbox,peer:users", want: batteries{Store: true, Bus: true, Outbox: true, Peers: []peer{users}}},
		{with: "peer:users,peer:user-profiles2", want: batteries{Peers: []peer{users, profiles}}},
		{with: "cache", err: `unknown battery "cache"`},
		{with: "store,store", err: "store given twice"},
		{with: "peer:", err: "peer:: a service name"},
		{with: "peer:Users", err: "peer:Users: a service name"},
		{with: "peer:users-", err: "peer:users-: a service name"},
		{with: "peer:2fa", err: "peer:2fa: a service name"},
	}
	for _, tt := range tests {
		got, err := parseWith(tt.with)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseWith(%q): %v, want an error with %q", tt.with, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseWith(%q) = %+v, %v; want %+v", tt.with, got, err, tt.want)
		}
	}
}

// TestScaffoldTemplates renders every template for every combination of batteries and
// checks that the Go files parse and the main wires exactly what was asked for (the
// end-to-end tests build and test some of the combinations).
func TestScaffoldTemplates(t *testing.T) {
	for _, with := range []string{"", "store", "bus", "store,bus", "outbox", "peer:users", "outbox,peer:users,peer:billing-api", "bus,peer:users"} {
		t.Run(with, func(t *testing.T) {
			bat, err := parseWith(with)
			if err != nil {
				t.Fatal(err)
			}
			d := scaffoldData{Name: "inventory", Pkg: "inventory", ImportPath: "example.com/inventory", RelDir: ".", batteries: bat}
			files := map[string]string{}
			for rel, name := range scaffoldFiles(d) {
				b, err := execTemplate(name, d)
				if err != nil {
					t.Fatal(err)
				}
				files[filepath.ToSlash(rel)] = string(b)
			}
			main := files["cmd/inventory/main.go"]
			for call, want := range map[string]bool{
				"app.Store(ctx, inventory.Migrations)":           bat.Store,
				`app.Bus(ctx, pubsub.Config{Stream: "INVENTORY"`: bat.Bus,
				"app.Outbox(ctx, st, bus)":                       bat.Outbox,
				`app.Dial(ctx, "users", cfg.UsersAddrs)`:         strings.Contains(with, "peer:users"),
				`env:"BILLING_API_GRPC_ADDRS" required:"true"`:   strings.Contains(with, "billing-api"),
				`_ "github.com/svckit/svckit/store/sqlite"`:      bat.Store,
			} {
				if strings.Contains(main, call) != want {
					t.Errorf("main.go has %s: %t, want %t\n%s", call, !want, want, main)
				}
			}
			if _, ok := files["migrations/001_init.sql"]; ok != bat.Store {
				t.Errorf("migrations/001_init.sql written: %t", ok)
			}
			if bat.Outbox && !strings.Contains(files["impl.go"], "s.ob.Add(ctx, tx, event)") {
				t.Errorf("impl.go does not add the event in the transaction:\n%s", files["impl.go"])
			}
		})
	}
}

// TestScaffoldGRPCName checks the gRPC name svckit new gives a service: a versioned
// protobuf package and a Service suffix, as buf lint's STANDARD rules want.
func TestScaffoldGRPCName(t *testing.T) {
	for _, tc := range []struct{ name, pkg, want string }{
		{"inventory", "inventory", "inventory.v1.InventoryService"},
		{"user-profiles", "userprofiles", "userprofiles.v1.UserProfilesService"},
		{"billing_api2", "billingapi2", "billingapi2.v1.BillingApi2Service"},
	} {
		d := scaffoldData{Name: tc.name, Pkg: tc.pkg}
		if got := d.GRPCName(); got != tc.want {
			t.Errorf("%s: GRPCName() = %s, want %s", tc.name, got, tc.want)
		}
		src, err := execTemplate("service.go.tmpl", d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), "\n//svckit:grpc "+tc.want+"\ntype Service interface {") {
			t.Errorf("%s: service.go does not carry //svckit:grpc %s:\n%s", tc.name, tc.want, src)
		}
	}
}
