package dashboard_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func eventually(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if f() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", url, err, b)
		}
	}
	return resp.StatusCode
}

// startSystem runs testdata/sys (relay → addsvc over gRPC) with the dashboard mounted.
func startSystem(t testing.TB, opts ...dashboard.Option) *devrun.System {
	t.Helper()
	out := &syncWriter{}
	ctx := context.Background()
	sys, err := devrun.Start(ctx, devrun.Options{
		Dir: "testdata/sys", StateDir: t.TempDir(), Out: out, Quiet: true,
		Backoff: devrun.Backoff{Min: 50 * time.Millisecond, Max: time.Second, Stable: time.Minute},
		Grace:   5 * time.Second,
		Handler: func(s *devrun.System) http.Handler {
			return dashboard.Handler(s, append([]dashboard.Option{dashboard.WithOpenAPIFunc(dashboard.OpenAPIFiles(s.Manifest))}, opts...)...)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	readyCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return sys
}

// relayAdd calls relay's POST /add, which calls addsvc over gRPC.
func relayAdd(t testing.TB, sys *devrun.System, a, b int) {
	t.Helper()
	resp, err := http.Post(sys.PublicURL()+"/add", "application/json", strings.NewReader(fmt.Sprintf(`{"a":%d,"b":%d}`, a, b)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`{"sum":%d}`, a+b); a+b != 0 && strings.TrimSpace(string(body)) != want {
		t.Fatalf("relay /add = %d %s, want %s", resp.StatusCode, body, want)
	}
}

// crossTrace waits for a relay trace whose spans from both processes have arrived and
// returns it.
func crossTrace(t testing.TB, base string) dashboard.TraceView {
	t.Helper()
	var tv dashboard.TraceView
	eventually(t, "a relay → addsvc trace with three spans", func() bool {
		var list []devrun.Summary
		getJSON(t, base+"/api/traces?service=relay&name=Add", &list)
		for _, s := range list {
			if s.Spans >= 3 && len(s.Services) == 2 {
				getJSON(t, base+"/api/traces/"+s.ID, &tv)
				return true
			}
		}
		return false
	})
	return tv
}

// checkStructure asserts relay's server span → relay's client span → addsvc's server span.
func checkStructure(t testing.TB, spans []devrun.Span) {
	t.Helper()
	byID := map[string]devrun.Span{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	var found bool
	for _, s := range spans {
		if s.Service != "addsvc" || s.Kind != "server" {
			continue
		}
		client, ok := byID[s.ParentID]
		if !ok || client.Service != "relay" || client.Kind != "client" {
			continue
		}
		root, ok := byID[client.ParentID]
		if ok && root.Service == "relay" && root.Kind == "server" && root.ParentID == "" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no relay server → relay client → addsvc server chain in %+v", spans)
	}
}

func TestSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	doc, err := os.ReadFile("testdata/addsvc.openapi.json") // a copy of the generated document
	if err != nil {
		t.Fatal(err)
	}
	secret := dashboard.NewSecret()
	sys := startSystem(t, dashboard.WithOpenAPI(map[string][]byte{"addsvc": doc}), dashboard.WithDevToken("dev-token-123"),
		dashboard.WithSecret(secret))
	base := sys.URL
	for i := 1; i <= 5; i++ {
		relayAdd(t, sys, i, 2)
	}

	t.Run("page", func(t *testing.T) {
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `<script src="app.js">`) {
			t.Fatalf("GET / = %d %.200s", resp.StatusCode, b)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Fatalf("CSP = %q", csp)
		}
		for _, p := range []string{"/app.js", "/app.css"} {
			if code := getJSON(t, base+p, nil); code != 200 {
				t.Fatalf("GET %s = %d", p, code)
			}
		}
	})

	t.Run("services", func(t *testing.T) {
		var v dashboard.SystemView
		eventually(t, "every instance healthy and ready", func() bool {
			getJSON(t, base+"/api/services", &v)
			for _, s := range v.Services {
				for _, in := range s.Instances {
					if !in.Healthy || !in.Ready || in.State != devrun.StateRunning {
						return false
					}
				}
			}
			return len(v.Services) == 2
		})
		if v.Name != "dashtest" || v.Services[0].Name != "addsvc" || v.Services[1].Name != "relay" || !v.Services[1].Public {
			t.Fatalf("services = %+v", v)
		}
		for _, s := range v.Services {
			in := s.Instances[0]
			if s.Version == "" || in.PID == 0 || in.Addrs["http"] == "" || in.Addrs["admin"] == "" || in.UptimeSeconds <= 0 {
				t.Fatalf("service %s: version %q, instance %+v", s.Name, s.Version, in)
			}
		}
	})

	tv := crossTrace(t, base)
	t.Run("trace", func(t *testing.T) {
		checkStructure(t, tv.Spans)
		if tv.Summary.Root != "relay/Add" || tv.Logs == 0 {
			t.Fatalf("summary %+v, %d log lines", tv.Summary, tv.Logs)
		}
		if code := getJSON(t, base+"/api/traces/0123456789abcdef0123456789abcdef", nil); code != 404 {
			t.Fatalf("unknown trace: %d", code)
		}
	})

	t.Run("trace filters", func(t *testing.T) {
		tests := []struct {
			query string
			check func(s devrun.Summary) bool
			some  bool
		}{
			{"service=addsvc", func(s devrun.Summary) bool { return strings.Contains(strings.Join(s.Services, ","), "addsvc") }, true},
			{"name=Sum", func(s devrun.Summary) bool { return true }, true},
			{"id=" + tv.ID[:10], func(s devrun.Summary) bool { return s.ID == tv.ID }, true},
			{"min_ms=60000", func(s devrun.Summary) bool { return false }, false},
			{"error=1", func(s devrun.Summary) bool { return s.Error }, false},
			{"service=nosuch", func(s devrun.Summary) bool { return false }, false},
		}
		for _, tc := range tests {
			var list []devrun.Summary
			getJSON(t, base+"/api/traces?"+tc.query, &list)
			if tc.some && len(list) == 0 {
				t.Errorf("%s: no traces", tc.query)
			}
			for _, s := range list {
				if !tc.check(s) {
					t.Errorf("%s: trace %+v does not match", tc.query, s)
				}
			}
		}
	})

	t.Run("logs by trace id", func(t *testing.T) {
		var lines []devrun.LogLine
		eventually(t, "log lines of both services in the trace", func() bool {
			getJSON(t, base+"/api/logs?trace_id="+tv.ID, &lines)
			seen := map[string]bool{}
			for _, l := range lines {
				seen[l.Service] = true
			}
			return seen["relay"] && seen["addsvc"]
		})
		for _, l := range lines {
			if l.TraceID != tv.ID {
				t.Fatalf("line of trace %q in the filter for %s: %s", l.TraceID, tv.ID, l.Raw)
			}
		}
		var relay []devrun.LogLine
		getJSON(t, base+"/api/logs?service=relay&text=relaying&level=info&limit=3", &relay)
		if len(relay) == 0 || len(relay) > 3 {
			t.Fatalf("relay lines: %d", len(relay))
		}
		for _, l := range relay {
			if l.Service != "relay" || !strings.Contains(l.Raw, "relaying") {
				t.Fatalf("line %+v does not match", l)
			}
		}
		var errs []devrun.LogLine
		getJSON(t, base+"/api/logs?level=error", &errs)
		for _, l := range errs {
			if l.Level != "ERROR" {
				t.Fatalf("level filter passed %+v", l)
			}
		}
	})

	t.Run("edges", func(t *testing.T) {
		var edges []dashboard.Edge
		getJSON(t, base+"/api/edges", &edges)
		for _, e := range edges {
			if e.From == "relay" && e.To == "addsvc" && e.Kind == "call" && e.Count > 0 {
				return
			}
		}
		t.Fatalf("no relay → addsvc edge in %+v", edges)
	})

	t.Run("log stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/stream/logs?service=relay&text=relaying", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("content type %q", ct)
		}
		go func() {
			time.Sleep(100 * time.Millisecond)
			if resp, err := http.Post(sys.PublicURL()+"/add", "application/json", strings.NewReader(`{"a":40,"b":2}`)); err == nil {
				resp.Body.Close()
			}
		}()
		sc := bufio.NewScanner(resp.Body)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				event = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && event == "log" {
				var l devrun.LogLine
				if err := json.Unmarshal([]byte(v), &l); err != nil {
					t.Fatal(err)
				}
				if l.Service != "relay" || !strings.Contains(l.Raw, "relaying") {
					t.Fatalf("stream passed a line the filter excludes: %s", l.Raw)
				}
				if strings.Contains(l.Raw, `"a":40`) {
					return
				}
			}
		}
		t.Fatalf("stream ended without the new line: %v", sc.Err())
	})

	t.Run("status stream", func(t *testing.T) {
		// A second dashboard over the same system, updating every 50 ms.
		fast := httptest.NewServer(dashboard.Handler(sys, dashboard.WithInterval(50*time.Millisecond)))
		defer fast.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fast.URL+"/api/stream/status", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		var events []dashboard.Status
		for sc.Scan() {
			v, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var st dashboard.Status
			if err := json.Unmarshal([]byte(v), &st); err != nil {
				t.Fatal(err)
			}
			if len(st.System.Services) != 2 || st.System.Traces == 0 {
				t.Fatalf("status %+v", st.System)
			}
			events = append(events, st)
			if len(events) == 1 {
				relayAdd(t, sys, 1, 1)
				sys.Metrics.ScrapeOnce(ctx)
				relayAdd(t, sys, 1, 1)
				sys.Metrics.ScrapeOnce(ctx) // a scrape pair: at least one series gets a point
				continue
			}
			// Later events carry only the points that are new since the one before.
			for _, s := range st.Metrics {
				if len(s.Points) > 2 {
					t.Fatalf("event %d has %d points of %+v", len(events), len(s.Points), s.SeriesKey)
				}
				for _, p := range s.Points {
					if !p.Time.After(events[0].Time.Add(-3 * time.Second)) {
						t.Fatalf("event %d repeats an old point of %+v: %v", len(events), s.SeriesKey, p.Time)
					}
				}
			}
			if len(st.Metrics) > 0 {
				return
			}
		}
		t.Fatalf("stream ended after %d events: %v", len(events), sc.Err())
	})

	t.Run("metrics", func(t *testing.T) {
		ctx := context.Background()
		sys.Metrics.ScrapeOnce(ctx)
		for i := 1; i <= 10; i++ {
			relayAdd(t, sys, i, 1)
		}
		sys.Metrics.ScrapeOnce(ctx)
		var series []dashboard.Series
		getJSON(t, base+"/api/metrics?service=relay", &series)
		for _, s := range series {
			if s.Service != "relay" {
				t.Fatalf("service filter passed %+v", s.SeriesKey)
			}
			if s.Method == "Add" && s.Transport == "http" && len(s.Points) > 0 && s.Points[len(s.Points)-1].Rate > 0 {
				return
			}
		}
		t.Fatalf("no rate for relay Add: %+v", series)
	})

	t.Run("explorer", func(t *testing.T) {
		var apis []dashboard.ServiceAPI
		getJSON(t, base+"/api/explorer", &apis)
		if len(apis) != 2 || apis[0].Service != "addsvc" || apis[0].Source != "openapi" || !apis[0].Token {
			t.Fatalf("explorer: %+v", apis)
		}
		var sum *dashboard.Endpoint
		for i, ep := range apis[0].Endpoints {
			if ep.Path == "/sum" {
				sum = &apis[0].Endpoints[i]
			}
		}
		if sum == nil || sum.Method != "POST" || !strings.Contains(sum.Example, `"a": 0`) {
			t.Fatalf("addsvc endpoints: %+v", apis[0].Endpoints)
		}
		if apis[1].Source != "traces" || len(apis[1].Endpoints) == 0 || apis[1].Endpoints[0].Name != "relay/Add" || apis[1].Endpoints[0].Path != "/add" {
			t.Fatalf("relay endpoints from traces: %+v", apis[1])
		}
		// The public relay with any method; the internal addsvc read-only.
		calls := []struct {
			method, path, body string
			code               int
			want               string
		}{
			{"POST", "/api/call/relay/add", `{"a":20,"b":22}`, 200, `{"sum":42}`},
			{"POST", "/api/call/addsvc/sum", `{"a":20,"b":22}`, 403, "internal service"},
			{"GET", "/api/call/addsvc/sum", "", 405, ""}, // addsvc's own answer: Sum is POST
		}
		for _, c := range calls {
			code, b, hdr := secretCall(t, c.method, base+c.path, secret, c.body)
			if code != c.code || !strings.Contains(b, c.want) || (code != 403 && hdr.Get("X-Svckit-Instance") == "") {
				t.Fatalf("%s %s through the proxy: %d %s, want %d %s", c.method, c.path, code, b, c.code, c.want)
			}
		}
		if code := getJSON(t, base+"/api/openapi/addsvc", nil); code != 200 {
			t.Fatalf("openapi document: %d", code)
		}
		if code := getJSON(t, base+"/api/openapi/relay", nil); code != 404 {
			t.Fatalf("missing openapi document: %d", code)
		}
	})

	t.Run("events", func(t *testing.T) {
		var ev struct {
			Configured bool                   `json:"configured"`
			Streams    []dashboard.StreamInfo `json:"streams"`
		}
		if code := getJSON(t, base+"/api/events", &ev); code != 200 || !ev.Configured {
			t.Fatalf("events: %d %+v", code, ev)
		}
	})

	t.Run("kill", func(t *testing.T) {
		in := sys.Instance("addsvc-1")
		old := in.Status().PID
		if code, b, _ := secretCall(t, "POST", base+"/api/instances/addsvc-1/kill", "", ""); code != 403 {
			t.Fatalf("kill without the secret = %d %s", code, b)
		}
		if code, b, _ := secretCall(t, "POST", base+"/api/instances/addsvc-1/kill", secret, ""); code != 200 {
			t.Fatalf("kill = %d %s", code, b)
		}
		eventually(t, "restart of addsvc-1", func() bool {
			st := in.Status()
			return st.Restarts == 1 && st.State == devrun.StateRunning && st.PID != old
		})
		if code, _, _ := secretCall(t, "POST", base+"/api/instances/nosuch-1/kill", secret, ""); code != 404 {
			t.Fatalf("kill of an unknown instance = %d", code)
		}
	})

	t.Run("restart", func(t *testing.T) {
		in := sys.Instance("addsvc-1")
		eventually(t, "addsvc-1 running", func() bool { return in.Status().State == devrun.StateRunning })
		before := in.Status()
		if code, b, _ := secretCall(t, "POST", base+"/api/instances/addsvc-1/restart", "", ""); code != 403 {
			t.Fatalf("restart without the secret = %d %s", code, b)
		}
		if code, b, _ := secretCall(t, "POST", base+"/api/instances/addsvc-1/restart", secret, ""); code != 202 {
			t.Fatalf("restart = %d %s", code, b)
		}
		eventually(t, "a new process for addsvc-1", func() bool {
			st := in.Status()
			return st.Restarts == before.Restarts+1 && st.State == devrun.StateRunning && st.PID != before.PID
		})
		if code, _, _ := secretCall(t, "POST", base+"/api/instances/nosuch-1/restart", secret, ""); code != 404 {
			t.Fatalf("restart of an unknown instance = %d", code)
		}
	})

	t.Run("streams end at Stop", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var bodies []io.ReadCloser
		for _, p := range []string{"/api/stream/status", "/api/stream/logs"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+p, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, resp.Body)
		}
		if err := sys.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		for _, b := range bodies {
			_, err := io.Copy(io.Discard, b) // returns when the handler ends the stream
			b.Close()
			if ctx.Err() != nil {
				t.Fatalf("stream still open after Stop: %v", err)
			}
		}
	})
}

// secretCall sends a request as curl would, with the secret in its header unless it is "".
func secretCall(t testing.TB, method, url, secret, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.Header.Set(dashboard.SecretHeader, secret)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// storeSystem returns a system with stores but no processes, for tests of the API alone.
func storeSystem(instances ...*devrun.Instance) *devrun.System {
	m := &devrun.Manifest{Name: "stores", Services: []devrun.Service{{Name: "orders", Replicas: 1}, {Name: "echo", Replicas: 1}}}
	sys := &devrun.System{Manifest: m, Logs: devrun.NewLogStore(0), Traces: devrun.NewTraceStore(0), Instances: instances}
	sys.Metrics = devrun.NewMetricsStore(sys)
	return sys
}

func TestCallProxyAddsDevToken(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s auth=%q cookie=%q body=%s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Cookie"), b)
	}))
	defer echo.Close()
	in := &devrun.Instance{Service: "echo", ID: "echo-1", Addrs: map[string]string{"http": strings.TrimPrefix(echo.URL, "http://")}}
	sys := storeSystem(in)
	sys.Manifest.Services[1].Public = true // the explorer calls the public service with any method
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithDevToken("tok"), dashboard.WithEventSource(nil),
		dashboard.WithSecret("s3cret")))
	defer srv.Close()
	tests := []struct {
		name, method, path, auth, body, want string
		code                                 int
	}{
		{"token added", "POST", "/api/call/echo/v1/orders?x=1", "", `{"n":1}`, `POST /v1/orders?x=1 auth="Bearer tok" cookie="" body={"n":1}`, 200},
		{"own header kept", "GET", "/api/call/echo/v1/orders/7", "Bearer mine", "", `GET /v1/orders/7 auth="Bearer mine" cookie="" body=`, 200},
		{"unknown service", "GET", "/api/call/nosuch/x", "", "", `no service nosuch`, 404},
		{"no running instance", "GET", "/api/call/orders/x", "", "", `no running instance of orders`, 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("Cookie", "session=secret")
			req.Header.Set(dashboard.SecretHeader, "s3cret")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.want) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, b, tc.code, tc.want)
			}
		})
	}
}

func TestParseOpenAPI(t *testing.T) {
	doc := []byte(`{"openapi":"3.1.0","paths":{
	  "/orders":{"post":{"operationId":"PlaceOrder","summary":"Place an order","requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/Req"}}}}},
	             "get":{"operationId":"ListOrders"}},
	  "/orders/{id}":{"get":{"operationId":"GetOrder"},"parameters":[]}},
	 "components":{"schemas":{"Req":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer"},
	   "tags":{"type":"array","items":{"type":"string"}},"note":{"type":["string","null"]},"kind":{"enum":["a","b"]}}}}}}`)
	eps, err := dashboard.ParseOpenAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range eps {
		got = append(got, e.Method+" "+e.Path+" "+e.Name)
	}
	if want := "GET /orders ListOrders|POST /orders PlaceOrder|GET /orders/{id} GetOrder"; strings.Join(got, "|") != want {
		t.Fatalf("endpoints %q, want %q", got, want)
	}
	var ex map[string]any
	if err := json.Unmarshal([]byte(eps[1].Example), &ex); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ex) != "map[kind:a note: qty:0 sku: tags:[]]" || !eps[1].HasBody || eps[1].Summary != "Place an order" {
		t.Fatalf("example %v, %+v", ex, eps[1])
	}
	if _, err := dashboard.ParseOpenAPI([]byte("not json")); err == nil {
		t.Fatal("no error for a malformed document")
	}
}

// externalURL finds absolute http(s) URLs. The only one allowed is the SVG namespace
// name, which is an identifier the browser never fetches.
var externalURL = regexp.MustCompile(`https?://[^\s"'<>)]*`)

func TestAssetsReferenceNoExternalURL(t *testing.T) {
	n := 0
	err := fs.WalkDir(dashboard.Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(dashboard.Assets(), path)
		if err != nil {
			return err
		}
		n++
		for _, u := range externalURL.FindAllString(string(b), -1) {
			if u != "http://www.w3.org/2000/svg" {
				t.Errorf("%s references %s", path, u)
			}
		}
		for _, bad := range []string{"@import", "fonts.googleapis", "cdn.", "//unpkg", "//cdnjs"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s contains %q", path, bad)
			}
		}
		return nil
	})
	if err != nil || n < 3 {
		t.Fatalf("walk: %v, %d files", err, n)
	}
}

func TestOpenAPIFiles(t *testing.T) {
	m, err := devrun.LoadManifest("testdata/sys")
	if err != nil {
		t.Fatal(err)
	}
	find := dashboard.OpenAPIFiles(m)
	ctx := context.Background()
	doc, err := find(ctx, "addsvc") // an import path: found with go list
	if err != nil {
		t.Fatal(err)
	}
	eps, err := dashboard.ParseOpenAPI(doc)
	if err != nil || len(eps) == 0 {
		t.Fatalf("addsvc: %d endpoints, %v", len(eps), err)
	}
	for _, name := range []string{"relay", "nosuch"} { // a package without documents; no service
		if doc, err := find(ctx, name); err != nil || doc != nil {
			t.Fatalf("%s: %q, %v", name, doc, err)
		}
	}
}

// TestOpenAPIFilesServed: in the shop's cmd/NAME layout the documents are not beside the
// main packages but beside the packages whose server they start; a service gets its own
// document, not those of the services whose clients it uses (gateway uses orders and
// catalog, orders uses catalog and payments).
func TestOpenAPIFilesServed(t *testing.T) {
	m, err := devrun.LoadManifest("../../examples/shop")
	if err != nil {
		t.Fatal(err)
	}
	find := dashboard.OpenAPIFiles(m)
	want := map[string]string{
		"gateway":       "POST /orders|GET /orders/{id}|GET /products",
		"orders":        "POST /orders/place-order|GET /orders/{id}",
		"catalog":       "GET /products|GET /products/{id}|POST /catalog/reserve|POST /catalog/release",
		"payments":      "POST /payments/charge|POST /payments/refund|GET /payments/{orderID}",
		"notifications": "GET /notifications/{orderID}",
	}
	for svc, w := range want {
		doc, err := find(context.Background(), svc)
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		eps, err := dashboard.ParseOpenAPI(doc)
		if err != nil {
			t.Fatalf("%s: %v", svc, err)
		}
		var got []string
		for _, e := range eps {
			got = append(got, e.Method+" "+e.Path)
		}
		slices.Sort(got)
		ws := strings.Split(w, "|")
		slices.Sort(ws)
		if !slices.Equal(got, ws) {
			t.Errorf("%s: endpoints %q, want %q", svc, got, ws)
		}
	}
}

func TestMergeOpenAPI(t *testing.T) {
	a := `{"openapi":"3.1.0","info":{"title":"a"},"paths":{"/x":{"get":{"operationId":"X"}}},"components":{"schemas":{"S":{"type":"string"}}}}`
	b := `{"openapi":"3.1.0","info":{"title":"b"},"paths":{"/x":{"post":{}},"/y":{"post":{"operationId":"Y","requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/T"}}}}}}},
	      "components":{"schemas":{"T":{"type":"object","properties":{"n":{"type":"integer"}}}}}}`
	doc, err := dashboard.MergeOpenAPI([]byte(a), []byte(b))
	if err != nil {
		t.Fatal(err)
	}
	eps, err := dashboard.ParseOpenAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range eps {
		got = append(got, e.Method+" "+e.Path+" "+strings.Join(strings.Fields(e.Example), ""))
	}
	if want := `GET /x |POST /x |POST /y {"n":0}`; strings.Join(got, "|") != want {
		t.Fatalf("merged endpoints %q, want %q", got, want)
	}
	if _, err := dashboard.MergeOpenAPI([]byte(a), []byte("{")); err == nil {
		t.Fatal("no error for a malformed document")
	}
	if doc, _ := dashboard.MergeOpenAPI(); doc != nil {
		t.Fatal("a document from none")
	}
}

// TestCallProxyMTLS: with mtls: true the explorer reaches a service's HTTP listener, which
// wants a client certificate, over https with the runner's certificate, and a public
// service's plain listener over http.
func TestCallProxyMTLS(t *testing.T) {
	ctx := context.Background()
	sys, err := devrun.Start(ctx, devrun.Options{
		Dir: "../devrun/testdata/mtls", StateDir: t.TempDir(), Out: io.Discard, Quiet: true, Grace: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	readyCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	secret := dashboard.NewSecret()
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil), dashboard.WithSecret(secret)))
	defer srv.Close()
	// The public edge over plain HTTP with any method; the internal addsvc over https with
	// the runner's certificate, read-only: its own 405 for GET /sum shows the call arrived.
	calls := []struct {
		svc, method string
		code        int
		want        string
	}{
		{"edge", "POST", 200, "5"},
		{"addsvc", "GET", 405, ""},
		{"addsvc", "POST", 403, "internal service"},
	}
	for _, c := range calls {
		body := ""
		if c.method == "POST" {
			body = `{"a":2,"b":3}`
		}
		code, b, hdr := secretCall(t, c.method, srv.URL+"/api/call/"+c.svc+"/sum", secret, body)
		if code != c.code || !strings.Contains(b, c.want) || (code != 403 && hdr.Get("X-Svckit-Instance") == "") {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.svc, code, b, c.code, c.want)
		}
	}
	// The service really wants a certificate: plain HTTP to it does not get the sum.
	for _, in := range sys.Instances {
		if in.Service != "addsvc" {
			continue
		}
		resp, err := http.Post("http://"+in.Addrs["http"]+"/sum", "application/json", strings.NewReader(`{"a":2,"b":3}`))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Errorf("plain HTTP to an mTLS listener: %d %s", resp.StatusCode, b)
			}
		}
	}
}
