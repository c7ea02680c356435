package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/mtls"
)

// TestLoad runs `svckit load` against a server that answers POST /orders as the shop's
// gateway does: it requires the bearer token, confirms most orders, cancels every
// seventh and refuses every thirteenth with 503. The command prints orders/s, p50, p99
// and the failures by status, counting only confirmed orders as successes.
func TestLoad(t *testing.T) {
	var n, confirmed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/orders" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		var body struct {
			Items []struct {
				ProductID string
				Quantity  int64
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Items) == 0 {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		i := n.Add(1)
		switch {
		case i%13 == 0:
			http.Error(w, `{"title":"overloaded"}`, http.StatusServiceUnavailable)
		case i%7 == 0:
			fmt.Fprintf(w, `{"id":"ord_%d","status":"cancelled","reason":"payment declined"}`, i)
		default:
			confirmed.Add(1)
			fmt.Fprintf(w, `{"id":"ord_%d","status":"confirmed"}`, i)
		}
	}))
	defer srv.Close()

	var out, errb bytes.Buffer
	if code := run([]string{"load", "-url", srv.URL + "/", "-token", "tok", "-c", "4", "-d", "1m", "-n", "910"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
	got := out.String()
	if n.Load() != 910 {
		t.Fatalf("server saw %d orders, want 910 (-n)\n%s", n.Load(), got)
	}
	// 910 orders: 70 refused (13, 26, …), 120 cancelled (7, 14, … but not 91, 182, …).
	failures := int64(70 + 120)
	for _, want := range []string{
		"orders: 910 in ",
		"orders/s: ",
		"p50: ", "p99: ",
		fmt.Sprintf("failures: %d\n", failures),
		"status 200, not confirmed: 120\n", "status 503: 70\n",
		"last failure: status ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if confirmed.Load() != 910-failures {
		t.Fatalf("server confirmed %d, want %d", confirmed.Load(), 910-failures)
	}
	m := regexp.MustCompile(`orders/s: (\d+) confirmed`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("no orders/s figure:\n%s", got)
	}
	if rate, _ := strconv.Atoi(m[1]); rate <= 0 {
		t.Errorf("orders/s = %d, want > 0", rate)
	}

	// -cpuprofile writes the generator's own profile.
	prof := filepath.Join(t.TempDir(), "load.pprof")
	if code, _, errs := loadOut(context.Background(), "-url", srv.URL, "-token", "tok", "-c", "2", "-n", "20", "-cpuprofile", prof); code != 0 {
		t.Fatalf("-cpuprofile: exit %d: %s", code, errs)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Errorf("-cpuprofile wrote no profile: %v", err)
	}

	// Without -url or -token it says what is missing.
	errb.Reset()
	if code := run([]string{"load", "-token", "tok"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "-url and -token are required") {
		t.Errorf("no -url: exit %d, %q", code, errb.String())
	}
}

// loadOut runs `svckit load` with args until ctx ends and returns its exit code, stdout
// and stderr.
func loadOut(ctx context.Context, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := load(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestLoadHTTP sends templated PUTs to any path: the server checks that the path, body
// and header of each request agree, counts them (exactly -n), and refuses every tenth
// with 503. The summary has the answers and failures by status; the progress line runs.
func TestLoadHTTP(t *testing.T) {
	var n, bad atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			N  int64
			ID string
		}
		id, ok := strings.CutPrefix(r.URL.Path, "/items/")
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || !ok || r.Method != http.MethodPut ||
			id != strconv.FormatInt(body.N, 10) || r.Header.Get("Authorization") != "Bearer tok" ||
			!strings.HasPrefix(r.Header.Get("X-Worker"), "w") || len(body.ID) != 36 {
			bad.Add(1)
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[id] = true
		mu.Unlock()
		time.Sleep(time.Millisecond) // some service time, so that the progress line has a run to show
		if n.Add(1)%10 == 0 {
			http.Error(w, "every tenth fails", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	code, out, errs := loadOut(context.Background(), "-url", srv.URL, "-X", "put", "-path", "/items/{{.N}}",
		"-body", `{"n":{{.N}},"id":"{{uuid}}"}`, "-H", "X-Worker: w{{.Worker}}", "-token", "tok",
		"-c", "4", "-n", "500", "-d", "1m", "-progress", "20ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if n.Load() != 500 || bad.Load() != 0 || len(seen) != 500 {
		t.Fatalf("server: %d good, %d bad, %d distinct paths; want 500, 0, 500\n%s", n.Load(), bad.Load(), len(seen), out)
	}
	for _, want := range []string{
		"PUT " + srv.URL + "/items/0, 4 concurrent, 500 calls, at most 1m0s…\n",
		"requests: 500 in ", "requests/s: ", "p50: ", "p90: ", "p99: ", "max: ",
		"answers: status 200: 450, status 503: 50\n", "failures: 50\n", "  status 503: 50\n",
		"last failure: status 503: every tenth fails",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "late:") {
		t.Errorf("a closed-model run reports late sends:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^ *\d+\.\ds  \d+ requests  \d+/s  \d+ failed  0 late  \d+ in flight$`).MatchString(errs) {
		t.Errorf("no progress line on stderr:\n%s", errs)
	}
}

// TestLoadRate runs at a fixed rate with one call in flight against a server whose 11th
// request stalls 300 ms: the summary counts the sends due during the stall as late and
// their latency from their intended time.
func TestLoadRate(t *testing.T) {
	const stall = 300 * time.Millisecond
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(50 * time.Millisecond) // the slow handler under test
			return
		}
		if n.Add(1) == 11 {
			time.Sleep(stall) // the slow handler under test
		}
	}))
	defer srv.Close()
	code, out, errs := loadOut(context.Background(), "-url", srv.URL+"/ping", "-rate", "200", "-c", "1", "-n", "100", "-progress", "0")
	if code != 0 || n.Load() != 100 || errs != "" {
		t.Fatalf("exit %d, %d requests\n%s%s", code, n.Load(), out, errs)
	}
	if !strings.Contains(out, "GET "+srv.URL+"/ping, 200/s (at most 1 in flight)") {
		t.Errorf("no plan line:\n%s", out)
	}
	m := regexp.MustCompile(`late: (\d+) of 100 sends started more than 1ms after their intended time`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no late line:\n%s", out)
	}
	// 60 sends are due in the 300 ms stall at one every 5 ms.
	if late, _ := strconv.Atoi(m[1]); late < 58 {
		t.Errorf("late %d, want at least 58:\n%s", late, out)
	}
	p90, max := summaryLatency(t, out, "p90"), summaryLatency(t, out, "max")
	if max < stall || p90 < 100*time.Millisecond {
		t.Errorf("max %s p90 %s: want max ≥ %s and p90 ≥ 100ms (the wait behind the stall)\n%s", max, p90, stall, out)
	}
	if strings.Contains(out, "unsent:") {
		t.Errorf("every send of -n was made, yet:\n%s", out)
	}

	// At 200/s for 300 ms with one call in flight and 50 ms calls, at most 7 of the 60 sends
	// due start: the others are reported unsent.
	code, out, errs = loadOut(context.Background(), "-url", srv.URL+"/slow", "-rate", "200", "-c", "1", "-d", "300ms", "-progress", "0")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	m = regexp.MustCompile(`unsent: (\d+) sends fell due and never started, every worker busy: the rate was not reached \(raise -c\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no unsent line:\n%s", out)
	}
	if unsent, _ := strconv.Atoi(m[1]); unsent < 53 || unsent > 60 {
		t.Errorf("unsent %d, want 53 to 60:\n%s", unsent, out)
	}
}

// summaryLatency returns the latency named in the summary's "p50: … max: …" line.
func summaryLatency(t *testing.T, out, name string) time.Duration {
	t.Helper()
	m := regexp.MustCompile(name + `: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %s in\n%s", name, out)
	}
	d, err := time.ParseDuration(m[1])
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

// startAddsvc runs addsvc in a svckit App on loopback: HTTP, and gRPC with reflection,
// with extra arguments such as its mTLS files.
func startAddsvc(t *testing.T, args ...string) (httpURL, grpcAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	app, err := svckit.New(ctx, "addsvc", &svckit.Config{}, svckit.Options{
		Stdout: io.Discard, Env: func(string) (string, bool) { return "", false }, Signals: []os.Signal{},
		Args: append([]string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}, args...),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := addsvc.MakeEndpoints(addsvc.New())
	addsvc.RegisterHTTP(app.HTTP(), e)
	addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), e)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("addsvc: %v", err)
		}
	})
	h, err := app.Addr(ctx, "http")
	if err != nil {
		t.Fatal(err)
	}
	g, err := app.Addr(ctx, "grpc")
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + h.String(), g.String()
}

// TestLoadGRPCAndOpenAPI loads a svckit App: its gRPC Sum found by reflection with a JSON
// body (every other call sums two zeroes, which addsvc refuses: InvalidArgument), and its
// HTTP Sum named from addsvc's OpenAPI document.
func TestLoadGRPCAndOpenAPI(t *testing.T) {
	httpURL, grpcAddr := startAddsvc(t)

	code, out, errs := loadOut(context.Background(), "-grpc", grpcAddr, "-method", "Sum",
		"-body", `{"a":{{mod .N 2}},"b":0}`, "-c", "4", "-n", "200", "-progress", "0")
	if code != 0 {
		t.Fatalf("grpc: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"gRPC /addsvc.Add/Sum on " + grpcAddr, "calls: 200 in ", "calls/s: ",
		"answers: OK: 100, InvalidArgument: 100\n", "failures: 100\n", "  InvalidArgument: 100\n",
		"last failure: InvalidArgument: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("grpc output lacks %q:\n%s", want, out)
		}
	}

	code, out, errs = loadOut(context.Background(), "-url", httpURL, "-openapi", "../../examples/addsvc/addsvc/addsvc.openapi.json",
		"-op", "Sum", "-body", `{"a":1,"b":{{.N}}}`, "-c", "2", "-n", "100", "-progress", "0")
	if code != 0 {
		t.Fatalf("openapi: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"POST " + httpURL + "/sum, ", "requests: 100 in ", "answers: status 200: 100\n", "failures: 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("openapi output lacks %q:\n%s", want, out)
		}
	}
}

// TestLoadMTLS loads a svckit App under mTLS, as svckit dev runs the shop: with -mtls
// (the CA and the svckit-dev certificate) its gRPC and HTTPS endpoints answer; without, the
// gRPC method cannot even be looked up.
func TestLoadMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := mtls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"addsvc", "svckit-dev"} {
		if _, err := ca.IssueFiles(dir, name); err != nil {
			t.Fatal(err)
		}
	}
	httpURL, grpcAddr := startAddsvc(t, "-tls-cert", filepath.Join(dir, "addsvc.crt"),
		"-tls-key", filepath.Join(dir, "addsvc.key"), "-tls-ca", filepath.Join(dir, "ca.crt"))
	httpsURL := "https" + strings.TrimPrefix(httpURL, "http")

	code, out, errs := loadOut(context.Background(), "-grpc", grpcAddr, "-mtls", dir, "-method", "Sum",
		"-body", `{"a":1,"b":{{.N}}}`, "-n", "50", "-c", "2", "-progress", "0")
	if code != 0 || !strings.Contains(out, "gRPC /addsvc.Add/Sum on "+grpcAddr+" (mTLS)") || !strings.Contains(out, "answers: OK: 50\n") {
		t.Fatalf("grpc under mTLS: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = loadOut(context.Background(), "-url", httpsURL, "-mtls", dir, "-path", "/sum",
		"-body", `{"a":1,"b":2}`, "-n", "50", "-c", "2", "-progress", "0")
	if code != 0 || !strings.Contains(out, "answers: status 200: 50\n") {
		t.Fatalf("https under mTLS: exit %d\n%s%s", code, out, errs)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"grpc without -mtls", []string{"-grpc", grpcAddr, "-method", "Sum"}, "Unavailable desc = connection error"},
		{"hint", []string{"-grpc", grpcAddr, "-method", "Sum"}, "(a service under mTLS, as svckit dev runs them, needs -mtls STATE/certs)"},
		{"http url with -mtls", []string{"-url", httpURL + "/sum", "-mtls", dir}, "want https://"},
		{"no such identity", []string{"-grpc", grpcAddr, "-method", "Sum", "-mtls", dir, "-mtls-identity", "nobody"}, "-mtls: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := loadOut(context.Background(), append(tc.args, "-timeout", "3s")...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q, want 2 and %q\n%s", code, errs, tc.want, out)
			}
		})
	}
}

// TestLoadOpenAPIPathParams fills an operation's path parameters from -param templates,
// escaped, and the shop gateway's operation is found by its short name.
func TestLoadOpenAPIPathParams(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
	}))
	defer srv.Close()
	code, out, errs := loadOut(context.Background(), "-url", srv.URL, "-openapi", "../../examples/shop/gateway/gateway.openapi.json",
		"-op", "GetOrder", "-param", "id=ord/{{.N}}", "-c", "1", "-n", "3", "-progress", "0")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if got := strings.Join(paths, ", "); got != "GET /orders/ord%2F0, GET /orders/ord%2F1, GET /orders/ord%2F2" {
		t.Fatalf("server saw %s", got)
	}
}

// TestLoadInterrupted stops a run as Ctrl-C does: the summary of the calls so far is
// printed, the calls cut off in flight counted apart.
func TestLoadInterrupted(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 5 {
			<-r.Context().Done() // hang until the client gives up
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for n.Load() < 7 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	code, out, errs := loadOut(ctx, "-url", srv.URL+"/x", "-c", "2", "-d", "1m", "-progress", "0")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"interrupted\n", "requests: 5 in ", "failures: 0\n", "cut off: 2 calls in flight at the end, not counted\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestLoadFlagErrors checks that bad flags and remote targets are refused with a precise
// message and exit 2, before any call.
func TestLoadFlagErrors(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	doc := "../../examples/shop/gateway/gateway.openapi.json"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no target", nil, "-url and -token are required"},
		{"remote url", []string{"-url", "http://192.0.2.1:8080/x"}, "192.0.2.1 is not a loopback address; svckit load is a development tool"},
		{"remote grpc", []string{"-grpc", "192.0.2.1:9090", "-method", "Sum"}, "192.0.2.1 is not a loopback address"},
		{"remote openapi", []string{"-url", srv.URL, "-openapi", "http://192.0.2.1/doc.json", "-op", "X"}, "not a loopback address"},
		{"bad url", []string{"-url", "ftp://127.0.0.1/x"}, "want an http:// or https:// URL"},
		{"concurrency", []string{"-url", srv.URL + "/x", "-c", "0"}, "-c 0: want 1 to 10000"},
		{"too much concurrency", []string{"-url", srv.URL + "/x", "-c", "10001"}, "-c 10001: want 1 to 10000"},
		{"rate", []string{"-url", srv.URL + "/x", "-rate", "-1"}, "-rate -1: want 0 to"},
		{"NaN rate", []string{"-url", srv.URL + "/x", "-rate", "NaN"}, "-rate NaN: want 0 to"},
		{"duration", []string{"-url", srv.URL + "/x", "-d", "0"}, "-d 0s: want more than 0"},
		{"long duration", []string{"-url", srv.URL + "/x", "-d", "25h"}, "at most 24h"},
		{"timeout", []string{"-url", srv.URL + "/x", "-timeout", "0"}, "-timeout 0s"},
		{"n", []string{"-url", srv.URL + "/x", "-n", "-1"}, "-n -1"},
		{"body template", []string{"-url", srv.URL, "-body", "{{.N"}, "-body: template: -body:1: unclosed action"},
		{"body file", []string{"-url", srv.URL, "-body", "@/no/such/file"}, "-body: open /no/such/file"},
		{"header", []string{"-url", srv.URL + "/x", "-H", "NoColon"}, `-H "NoColon": want 'Name: value'`},
		{"path", []string{"-url", srv.URL, "-path", "x"}, `-path "x": want a path starting with /`},
		{"grpc and url", []string{"-grpc", "127.0.0.1:1", "-url", srv.URL}, "-grpc cannot be combined"},
		{"grpc without method", []string{"-grpc", "127.0.0.1:1"}, "-grpc needs -method"},
		{"op without doc", []string{"-url", srv.URL, "-op", "PlaceOrder"}, "-op and -openapi go together"},
		{"unknown op", []string{"-url", srv.URL, "-openapi", doc, "-op", "Refund"}, `no operation "Refund"`},
		{"missing param", []string{"-url", srv.URL, "-openapi", doc, "-op", "GetOrder"}, "GET /orders/{id} needs -param id=VALUE"},
		{"unknown param", []string{"-url", srv.URL, "-openapi", doc, "-op", "GetOrder", "-param", "id=1", "-param", "x=2"}, "-param x: GET /orders/{id} has no such parameter"},
		{"param without op", []string{"-url", srv.URL + "/x", "-param", "id=1"}, "-param goes with -op"},
		{"method against op", []string{"-url", srv.URL, "-openapi", doc, "-op", "PlaceOrder", "-X", "GET"}, "-X GET: operation GatewayPlaceOrder is POST /orders"},
		{"shop with path", []string{"-shop", "-url", srv.URL, "-token", "t", "-path", "/x"}, "-shop places orders: it takes no -path"},
		{"shop without token", []string{"-url", srv.URL}, "-url and -token are required to place the shop's orders"},
		{"argument", []string{"-url", srv.URL, "extra"}, `unexpected argument "extra"`},
		{"cpuprofile", []string{"-url", srv.URL + "/x", "-cpuprofile", "/no/such/dir/p"}, "-cpuprofile: open /no/such/dir/p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SVCKIT_TOKEN", "")
			code, out, errs := loadOut(context.Background(), tc.args...)
			if code != 2 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q\n%s", code, errs, tc.want, out)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
}
