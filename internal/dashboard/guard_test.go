package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// recorder is a service's HTTP listener that records what reaches it.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string // "METHOD /path auth=… cookie=… secret=… page=… origin=…"
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		line := fmt.Sprintf("%s %s auth=%q cookie=%q secret=%q page=%q origin=%q body=%s", r.Method, r.URL.RequestURI(),
			r.Header.Get("Authorization"), r.Header.Get("Cookie"), r.Header.Get(dashboard.SecretHeader),
			r.Header.Get(dashboard.PageHeader), r.Header.Get("Origin"), b)
		rec.mu.Lock()
		rec.got = append(rec.got, line)
		rec.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "svc", Value: "x"})
		fmt.Fprint(w, line)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) addr() string { return strings.TrimPrefix(rec.srv.URL, "http://") }

func (rec *recorder) calls() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.got...)
}

// supervised runs a real process under devrun's supervisor until the test ends: sh -c script.
func supervised(t *testing.T, logs *devrun.LogStore, service, id, script string) *devrun.Instance {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	in := &devrun.Instance{Service: service, ID: id, Bin: sh, Args: []string{"-c", script}, Addrs: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.Supervise(ctx, logs, devrun.Backoff{Min: 20 * time.Millisecond, Max: 100 * time.Millisecond, Stable: time.Minute}, time.Second)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return in
}

// guardedSystem is a system of a public service (gateway) and an internal one (orders),
// both recorders, a real process (worker-1, sleeping) to kill and one that failed with a
// configuration error (broken-1), behind a dashboard with the secret on a real loopback
// listener.
type guardedSystem struct {
	sys              *devrun.System
	srv              *httptest.Server
	gateway, orders  *recorder
	worker, broken   *devrun.Instance
	secret, port     string
	cookie           *http.Cookie
	hostPort, origin string
}

func startGuarded(t *testing.T) *guardedSystem {
	t.Helper()
	g := &guardedSystem{secret: dashboard.NewSecret(), gateway: newRecorder(t), orders: newRecorder(t)}
	logs := devrun.NewLogStore(0)
	g.worker = supervised(t, logs, "worker", "worker-1", "exec sleep 600")
	g.broken = supervised(t, logs, "broken", "broken-1", `echo "broken: config: -mode (MODE) is required" >&2; exit 2`)
	g.broken.Addrs["http"] = g.orders.addr() // a failed instance's address is never called
	m := &devrun.Manifest{Name: "guarded", Services: []devrun.Service{
		{Name: "gateway", Replicas: 1, Public: true}, {Name: "orders", Replicas: 1},
		{Name: "worker", Replicas: 1}, {Name: "broken", Replicas: 1}}}
	g.sys = &devrun.System{Manifest: m, Logs: logs, Traces: devrun.NewTraceStore(0), Instances: []*devrun.Instance{
		{Service: "gateway", ID: "gateway-1", Addrs: map[string]string{"http": g.gateway.addr()}},
		{Service: "orders", ID: "orders-1", Addrs: map[string]string{"http": g.orders.addr()}},
		g.worker, g.broken,
	}}
	g.sys.Metrics = devrun.NewMetricsStore(g.sys)
	g.srv = httptest.NewServer(dashboard.Handler(g.sys, dashboard.WithSecret(g.secret), dashboard.WithDevToken("dev-jwt"),
		dashboard.WithEventSource(nil)))
	t.Cleanup(g.srv.Close)
	g.hostPort = strings.TrimPrefix(g.srv.URL, "http://")
	_, g.port, _ = net.SplitHostPort(g.hostPort)
	g.origin = g.srv.URL
	g.cookie = &http.Cookie{Name: "svckit_dev_" + g.port, Value: g.secret}
	eventually(t, "worker-1 running and broken-1 failed", func() bool {
		return g.worker.Status().State == devrun.StateRunning && g.broken.Status().State == devrun.StateFailed
	})
	return g
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// guardRequest is one request of TestGuard and what it must get.
type guardRequest struct {
	name, method, path, body string
	host                     string // Host header; "" for the listener's address
	origin, fetchSite        string // Origin and Sec-Fetch-Site; "self" for the dashboard's own origin
	secretHeader             string // X-Svckit-Secret; "right" for the run's secret
	cookie                   bool   // the session cookie of the run
	page                     bool   // X-Svckit-Dashboard: 1
	code                     int
	want                     string // in the body
}

func (g *guardedSystem) do(t *testing.T, tc guardRequest) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(tc.method, g.srv.URL+tc.path, strings.NewReader(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	if tc.host != "" {
		req.Host = strings.ReplaceAll(tc.host, "PORT", g.port)
	}
	self := func(v string) string {
		if v == "self" {
			return g.origin
		}
		return strings.ReplaceAll(v, "PORT", g.port)
	}
	if tc.origin != "" {
		req.Header.Set("Origin", self(tc.origin))
	}
	if tc.fetchSite != "" {
		req.Header.Set("Sec-Fetch-Site", tc.fetchSite)
	}
	switch tc.secretHeader {
	case "":
	case "right":
		req.Header.Set(dashboard.SecretHeader, g.secret)
	default:
		req.Header.Set(dashboard.SecretHeader, tc.secretHeader)
	}
	if tc.cookie {
		req.AddCookie(g.cookie)
	}
	if tc.page {
		req.Header.Set(dashboard.PageHeader, "1")
	}
	if tc.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestGuard sends the attacks of issue 13 to a dashboard over real loopback HTTP: a
// foreign Host (DNS rebinding) on every kind of route, cross-origin requests (a foreign
// Origin, Sec-Fetch-Site cross-site or same-site — another port of 127.0.0.1), requests
// without the secret or with only half of the page's credentials; each is refused, the
// instance keeps running and no service hears of it. The dashboard's own page (cookie,
// page header, its own origin) and curl with the secret header work.
func TestGuard(t *testing.T) {
	g := startGuarded(t)
	pid := g.worker.Status().PID

	refused := []guardRequest{
		// DNS rebinding: the browser sends the attacker's name as Host.
		{name: "foreign Host, page", method: "GET", path: "/", host: "rebind.example:PORT", code: 403, want: "foreign Host"},
		{name: "foreign Host, read", method: "GET", path: "/api/services", host: "rebind.example:PORT", code: 403, want: "foreign Host"},
		{name: "foreign Host, kill with every credential", method: "POST", path: "/api/instances/worker-1/kill", host: "rebind.example:PORT",
			origin: "http://rebind.example:PORT", fetchSite: "same-origin", cookie: true, page: true, secretHeader: "right", code: 403, want: "foreign Host"},
		{name: "foreign Host, proxy", method: "POST", path: "/api/call/gateway/orders", body: `{"n":1}`, host: "rebind.example:PORT",
			origin: "http://rebind.example:PORT", fetchSite: "same-origin", cookie: true, page: true, code: 403, want: "foreign Host"},
		{name: "localhost with another port", method: "GET", path: "/api/services", host: "localhost:1", code: 403, want: "foreign Host"},
		{name: "loopback name with a trailing dot", method: "GET", path: "/api/services", host: "localhost.:PORT", code: 403, want: "foreign Host"},
		{name: "a name under localhost", method: "GET", path: "/api/services", host: "evil.localhost:PORT", code: 403, want: "foreign Host"},
		{name: "another loopback address", method: "GET", path: "/api/services", host: "127.0.0.2:PORT", code: 403, want: "foreign Host"},
		{name: "no port", method: "GET", path: "/api/services", host: "127.0.0.1", code: 403, want: "foreign Host"},
		// Cross-origin pages: not even reads of the API.
		{name: "cross-site read", method: "GET", path: "/api/logs?text=x", fetchSite: "cross-site", code: 403, want: "cross-origin"},
		{name: "foreign Origin read", method: "GET", path: "/api/services", origin: "http://evil.example", code: 403, want: "cross-origin"},
		// POST kill from another origin: a form post or fetch, with the cookie the browser adds.
		{name: "kill, foreign Origin", method: "POST", path: "/api/instances/worker-1/kill", origin: "http://evil.example", fetchSite: "cross-site",
			cookie: true, code: 403, want: "cross-origin"},
		{name: "kill, another port of 127.0.0.1 (same site: the cookie is sent)", method: "POST", path: "/api/instances/worker-1/kill",
			origin: "http://127.0.0.1:1", fetchSite: "same-site", cookie: true, page: true, code: 403, want: "cross-origin"},
		{name: "kill, null Origin (sandboxed page)", method: "POST", path: "/api/instances/worker-1/kill", origin: "null", cookie: true, page: true, code: 403, want: "cross-origin"},
		{name: "kill, foreign Origin with the secret header", method: "POST", path: "/api/instances/worker-1/kill", origin: "http://evil.example",
			secretHeader: "right", code: 403, want: "cross-origin"},
		{name: "kill, Sec-Fetch-Site cross-site without Origin", method: "POST", path: "/api/instances/worker-1/kill", fetchSite: "cross-site",
			secretHeader: "right", code: 403, want: "cross-origin"},
		// Same origin, but without the secret.
		{name: "kill, no secret", method: "POST", path: "/api/instances/worker-1/kill", code: 403, want: "secret"},
		{name: "kill, same origin without the cookie", method: "POST", path: "/api/instances/worker-1/kill", origin: "self", fetchSite: "same-origin",
			page: true, code: 403, want: "secret"},
		{name: "kill, cookie without the page header", method: "POST", path: "/api/instances/worker-1/kill", origin: "self", fetchSite: "same-origin",
			cookie: true, code: 403, want: "secret"},
		{name: "kill, wrong secret header", method: "POST", path: "/api/instances/worker-1/kill", secretHeader: "not-the-secret", code: 403, want: "secret"},
		{name: "kill, the secret as the cookie without the page header, by curl", method: "POST", path: "/api/instances/worker-1/kill", cookie: true, code: 403, want: "secret"},
		{name: "method other than GET without the secret", method: "DELETE", path: "/api/services", code: 403, want: "secret"},
		{name: "preflight", method: "OPTIONS", path: "/api/call/gateway/orders", origin: "http://evil.example", code: 403, want: "cross-origin"},
		// The proxy: every method needs the secret; no cross-origin page reaches a service.
		{name: "proxy GET without the secret", method: "GET", path: "/api/call/gateway/orders/7", code: 403, want: "secret"},
		{name: "proxy POST without the secret", method: "POST", path: "/api/call/gateway/orders", body: `{"n":1}`, code: 403, want: "secret"},
		{name: "proxy POST, foreign Origin, cookie and page header", method: "POST", path: "/api/call/gateway/orders", body: `{"n":1}`,
			origin: "http://evil.example", fetchSite: "cross-site", cookie: true, page: true, code: 403, want: "cross-origin"},
		{name: "proxy POST to an internal service with the secret", method: "POST", path: "/api/call/orders/payments/charge",
			body: `{"amount":999.99}`, secretHeader: "right", code: 403, want: "internal service"},
		{name: "proxy DELETE to an internal service from the page", method: "DELETE", path: "/api/call/orders/orders/7",
			origin: "self", fetchSite: "same-origin", cookie: true, page: true, code: 403, want: "read-only"},
		{name: "proxy to a failed instance", method: "GET", path: "/api/call/broken/x", secretHeader: "right", code: 502, want: "no running instance"},
		{name: "secret link of another run", method: "GET", path: "/?k=not-the-secret", code: 403, want: "not this run's"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(t, tc)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%s %s: %d %s, want %d with %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.want)
			}
			if h := resp.Header.Get("Access-Control-Allow-Origin"); h != "" {
				t.Fatalf("Access-Control-Allow-Origin: %s", h)
			}
			if c := resp.Header.Get("Set-Cookie"); c != "" {
				t.Fatalf("a refusal sets a cookie: %s", c)
			}
			if st := g.worker.Status(); st.State != devrun.StateRunning || st.PID != pid || st.Restarts != 0 {
				t.Fatalf("worker-1 after a refused request: %+v (pid was %d)", st, pid)
			}
		})
	}
	time.Sleep(100 * time.Millisecond) // a kill that got through would show by now
	if st := g.worker.Status(); st.State != devrun.StateRunning || st.PID != pid {
		t.Fatalf("worker-1 after the refused requests: %+v", st)
	}
	if got := g.gateway.calls(); len(got) != 0 {
		t.Fatalf("refused requests reached the gateway: %q", got)
	}
	if got := g.orders.calls(); len(got) != 0 {
		t.Fatalf("refused requests reached orders: %q", got)
	}

	allowed := []guardRequest{
		{name: "page", method: "GET", path: "/", code: 200, want: "<script"},
		{name: "page by localhost", method: "GET", path: "/", host: "localhost:PORT", code: 200, want: "<script"},
		{name: "read by [::1]", method: "GET", path: "/api/services", host: "[::1]:PORT", code: 200, want: `"worker-1"`},
		{name: "read by curl", method: "GET", path: "/api/services", code: 200, want: `"worker-1"`},
		{name: "read from the page", method: "GET", path: "/api/services", origin: "self", fetchSite: "same-origin", page: true, code: 200, want: `"worker-1"`},
		{name: "navigation typed by the user", method: "GET", path: "/", fetchSite: "none", code: 200, want: "<script"},
		{name: "session without the cookie", method: "GET", path: "/api/session", code: 200, want: `"authorized":false`},
		{name: "session with the cookie", method: "GET", path: "/api/session", cookie: true, code: 200, want: `"authorized":true`},
		{name: "proxy GET to the internal service from the page", method: "GET", path: "/api/call/orders/orders/7",
			origin: "self", fetchSite: "same-origin", cookie: true, page: true, code: 200, want: `GET /orders/7 auth="Bearer dev-jwt" cookie="" secret="" page="" origin=""`},
		{name: "proxy POST to the public service from the page", method: "POST", path: "/api/call/gateway/orders", body: `{"n":1}`,
			origin: "self", fetchSite: "same-origin", cookie: true, page: true, code: 200, want: `POST /orders auth="Bearer dev-jwt" cookie="" secret="" page="" origin="" body={"n":1}`},
		{name: "proxy POST to the public service by curl", method: "POST", path: "/api/call/gateway/orders", body: `{"n":2}`,
			secretHeader: "right", code: 200, want: `POST /orders auth="Bearer dev-jwt" cookie="" secret="" page="" origin="" body={"n":2}`},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.do(t, tc)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%s %s: %d %.300s, want %d with %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.want)
			}
			if strings.HasPrefix(tc.path, "/api/call/") && resp.Header.Get("Set-Cookie") != "" {
				t.Fatalf("a service's cookie passed through the proxy: %s", resp.Header.Get("Set-Cookie"))
			}
		})
	}
	if got := g.orders.calls(); len(got) != 1 {
		t.Fatalf("orders got %q, want the one GET", got)
	}

	t.Run("the secret link sets the session cookie", func(t *testing.T) {
		resp, _ := g.do(t, guardRequest{method: "GET", path: "/?k=" + g.secret})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Fatalf("GET /?k=SECRET: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		var c *http.Cookie
		for _, rc := range resp.Cookies() {
			if rc.Name == "svckit_dev_"+g.port {
				c = rc
			}
		}
		if c == nil || c.Value != g.secret || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
			t.Fatalf("cookie %+v from %q", c, resp.Header.Values("Set-Cookie"))
		}
	})

	kills := []guardRequest{
		{name: "kill from the page", method: "POST", path: "/api/instances/worker-1/kill", origin: "self", fetchSite: "same-origin",
			cookie: true, page: true, code: 200, want: `"killed":"worker-1"`},
		{name: "kill by curl with the secret", method: "POST", path: "/api/instances/worker-1/kill", secretHeader: "right", code: 200, want: `"killed":"worker-1"`},
	}
	for i, tc := range kills {
		t.Run(tc.name, func(t *testing.T) {
			before := g.worker.Status().PID
			resp, body := g.do(t, tc)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.want) {
				t.Fatalf("%d %s, want %d with %q", resp.StatusCode, body, tc.code, tc.want)
			}
			eventually(t, "worker-1 restarted", func() bool {
				st := g.worker.Status()
				return st.State == devrun.StateRunning && st.PID != before && st.Restarts == i+1
			})
		})
	}

	t.Run("kill starts a failed instance again", func(t *testing.T) {
		resp, body := g.do(t, guardRequest{method: "POST", path: "/api/instances/broken-1/kill", secretHeader: "right"})
		if resp.StatusCode != 200 || !strings.Contains(body, `"started":"broken-1"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		eventually(t, "broken-1 started and failed again", func() bool {
			st := g.broken.Status()
			return st.Restarts == 1 && st.State == devrun.StateFailed
		})
		lines := g.sys.Logs.Query(devrun.LogFilter{Service: "svckit", Text: "broken-1"})
		if len(lines) != 1 || !strings.Contains(lines[0].Raw, "starting broken-1 again from the dashboard") {
			t.Fatalf("log lines: %+v", lines)
		}
	})
}

// TestExplorerMarksInternalReadOnly: the explorer tells the page which services it calls
// read-only, and why.
func TestExplorerMarksInternalReadOnly(t *testing.T) {
	g := startGuarded(t)
	resp, body := g.do(t, guardRequest{method: "GET", path: "/api/explorer"})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var apis []dashboard.ServiceAPI
	if err := json.Unmarshal([]byte(body), &apis); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		service          string
		public, readOnly bool
	}{
		{"gateway", true, false},
		{"orders", false, true},
		{"worker", false, true},
	}
	for _, tc := range tests {
		found := false
		for _, a := range apis {
			if a.Service != tc.service {
				continue
			}
			found = true
			if a.Public != tc.public || a.ReadOnly != tc.readOnly || (a.ReadOnly && !strings.Contains(a.ReadOnlyReason, "through the public service, gateway")) {
				t.Errorf("%s: %+v", tc.service, a)
			}
		}
		if !found {
			t.Errorf("%s missing from %s", tc.service, body)
		}
	}
}
