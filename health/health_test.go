package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/svckit/svckit/health"
)

func TestChecks(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })

	tests := []struct {
		name    string
		check   health.Check
		wantOK  bool
		wantErr string // substring of CheckResult.Error
	}{
		{"pass", func(context.Context) error { return nil }, true, ""},
		{"fail", func(context.Context) error { return errors.New("connection refused") }, false, "connection refused"},
		{"timeout respecting ctx", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, false, "timed out after 50ms"},
		{"timeout ignoring ctx", func(context.Context) error { <-hang; return nil }, false, "timed out after 50ms"},
		{"panic", func(context.Context) error { panic("boom") }, false, "check panicked: boom"},
	}
	for _, tt := range tests {
		for _, kind := range []string{"liveness", "readiness"} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				h := health.New(health.WithTimeout(50 * time.Millisecond))
				h.SetReady(true)
				var rep health.Report
				if kind == "liveness" {
					h.AddLiveness("other", func(context.Context) error { return nil })
					h.AddLiveness("c", tt.check)
					rep = h.Live(t.Context())
				} else {
					h.AddReadiness("other", func(context.Context) error { return nil })
					h.AddReadiness("c", tt.check)
					rep = h.Ready(t.Context())
				}
				if got := rep.OK(); got != tt.wantOK {
					t.Fatalf("OK() = %v, want %v (report %+v)", got, tt.wantOK, rep)
				}
				if len(rep.Checks) != 2 {
					t.Fatalf("checks = %v, want 2 entries", rep.Checks)
				}
				if rep.Checks["other"].Status != health.StatusOK {
					t.Errorf("other check = %+v, want ok", rep.Checks["other"])
				}
				c := rep.Checks["c"]
				if tt.wantOK {
					if c.Status != health.StatusOK || c.Error != "" {
						t.Errorf("check = %+v, want ok without error", c)
					}
					return
				}
				if c.Status != health.StatusFail || !strings.Contains(c.Error, tt.wantErr) {
					t.Errorf("check = %+v, want fail with error containing %q", c, tt.wantErr)
				}
				if len(rep.Failed()) != 1 {
					t.Errorf("Failed() = %v, want only c", rep.Failed())
				}
			})
		}
	}
}

func TestChecksRunConcurrently(t *testing.T) {
	// Each check waits for the other to start: run one after the other they would both
	// time out.
	h := health.New(health.WithTimeout(10 * time.Second))
	h.SetReady(true)
	a, b := make(chan struct{}), make(chan struct{})
	h.AddReadiness("a", func(ctx context.Context) error {
		close(a)
		select {
		case <-b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	h.AddReadiness("b", func(ctx context.Context) error {
		close(b)
		select {
		case <-a:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if rep := h.Ready(t.Context()); !rep.OK() {
		t.Fatalf("report = %+v, want ok", rep)
	}
}

func TestHungCheckDoesNotPileUp(t *testing.T) {
	h := health.New(health.WithTimeout(20*time.Millisecond), health.WithCacheTTL(0))
	release := make(chan struct{})
	var calls atomic.Int32
	h.AddLiveness("hung", func(context.Context) error {
		calls.Add(1)
		<-release
		return nil
	})
	for range 3 {
		if rep := h.Live(t.Context()); rep.OK() {
			t.Fatalf("report = %+v, want fail", rep)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("hung check started %d times, want 1", n)
	}
	close(release)
}

func TestGate(t *testing.T) {
	h := health.New()
	var readyCalls atomic.Int32
	h.AddReadiness("db", func(context.Context) error { readyCalls.Add(1); return nil })
	h.AddLiveness("loop", func(context.Context) error { return nil })

	steps := []struct {
		name    string
		set     *bool
		wantOK  bool
		wantErr string
	}{
		{"new is not ready", nil, false, "not ready: starting"},
		{"SetReady(true)", ptr(true), true, ""},
		{"SetReady(false)", ptr(false), false, "not ready: draining"},
		{"SetReady(true) again", ptr(true), true, ""},
	}
	for _, s := range steps {
		if s.set != nil {
			h.SetReady(*s.set)
		}
		rep := h.Ready(t.Context())
		if rep.OK() != s.wantOK {
			t.Fatalf("%s: Ready = %+v, want ok=%v", s.name, rep, s.wantOK)
		}
		if !s.wantOK {
			if len(rep.Checks) != 1 || rep.Checks[health.GateCheck].Error != s.wantErr {
				t.Errorf("%s: checks = %+v, want only %q with error %q", s.name, rep.Checks, health.GateCheck, s.wantErr)
			}
		}
		if live := h.Live(t.Context()); !live.OK() {
			t.Errorf("%s: Live = %+v, want ok whatever the gate", s.name, live)
		}
	}
	// Readiness checks ran only while the gate was open (twice, but the second time within
	// the cache TTL, so possibly once).
	if n := readyCalls.Load(); n < 1 || n > 2 {
		t.Errorf("readiness check ran %d times, want 1 or 2", n)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWatch(t *testing.T) {
	h := health.New()
	var got []bool
	h.Watch(func(ready bool) { got = append(got, ready) })
	h.SetReady(true)
	h.SetReady(true) // no change, no call
	h.SetReady(false)
	h.SetReady(false)
	h.SetReady(true)

	var late []bool
	h.Watch(func(ready bool) { late = append(late, ready) })

	if want := []bool{false, true, false, true}; !equal(got, want) {
		t.Errorf("watcher saw %v, want %v", got, want)
	}
	if want := []bool{true}; !equal(late, want) {
		t.Errorf("late watcher saw %v, want %v", late, want)
	}
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCache(t *testing.T) {
	tests := []struct {
		name      string
		ttl       time.Duration
		wantCalls int32
	}{
		{"cached", time.Hour, 1},
		{"no cache", 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := health.New(health.WithCacheTTL(tt.ttl))
			h.SetReady(true)
			var calls atomic.Int32
			h.AddReadiness("db", func(context.Context) error { calls.Add(1); return nil })
			for range 3 {
				rep := h.Ready(t.Context())
				if !rep.OK() {
					t.Fatalf("report = %+v", rep)
				}
				rep.Checks["db"] = health.CheckResult{Status: health.StatusFail} // must not leak into the cache
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("check ran %d times, want %d", n, tt.wantCalls)
			}
			if rep := h.Ready(t.Context()); !rep.OK() {
				t.Errorf("report after caller mutation = %+v, want ok", rep)
			}
		})
	}

	t.Run("adding a check invalidates", func(t *testing.T) {
		h := health.New(health.WithCacheTTL(time.Hour))
		h.AddLiveness("a", func(context.Context) error { return nil })
		if rep := h.Live(t.Context()); !rep.OK() || len(rep.Checks) != 1 {
			t.Fatalf("report = %+v", rep)
		}
		h.AddLiveness("b", func(context.Context) error { return errors.New("broken") })
		if rep := h.Live(t.Context()); rep.OK() || len(rep.Checks) != 2 {
			t.Fatalf("report after AddLiveness = %+v, want b failing", rep)
		}
	})
}

func TestAddPanics(t *testing.T) {
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name string
		add  func(h *health.Health)
	}{
		{"empty name", func(h *health.Health) { h.AddLiveness("", ok) }},
		{"nil check", func(h *health.Health) { h.AddReadiness("db", nil) }},
		{"duplicate", func(h *health.Health) { h.AddReadiness("db", ok); h.AddReadiness("db", ok) }},
		{"reserved", func(h *health.Health) { h.AddReadiness(health.GateCheck, ok) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			tt.add(health.New())
		})
	}
}

// wireReport mirrors the JSON the handlers write, decoded strictly.
type wireReport struct {
	Status string                        `json:"status"`
	Checks map[string]health.CheckResult `json:"checks"`
}

func TestHandlers(t *testing.T) {
	h := health.New(health.WithCacheTTL(0))
	var dbErr atomic.Value // error message, "" for healthy
	dbErr.Store("")
	h.AddLiveness("loop", func(context.Context) error { return nil })
	h.AddReadiness("cache", func(context.Context) error { return nil })
	h.AddReadiness("db", func(context.Context) error {
		if msg := dbErr.Load().(string); msg != "" {
			return errors.New(msg)
		}
		return nil
	})
	srv := httptest.NewServer(health.AdminMux(h, nil))
	defer srv.Close()

	tests := []struct {
		name       string
		setup      func()
		method     string
		path       string
		wantCode   int
		wantStatus string
		wantChecks map[string]string // name -> error ("" for ok)
	}{
		{"live ok", nil, "GET", "/healthz", 200, "ok", map[string]string{}},
		{"live verbose", nil, "GET", "/healthz?verbose", 200, "ok", map[string]string{"loop": ""}},
		{"ready before SetReady", nil, "GET", "/readyz", 503, "fail", map[string]string{"gate": "not ready: starting"}},
		{"ready", func() { h.SetReady(true) }, "GET", "/readyz", 200, "ok", map[string]string{}},
		{"ready verbose", nil, "GET", "/readyz?verbose=1", 200, "ok", map[string]string{"cache": "", "db": ""}},
		{"ready verbose=false", nil, "GET", "/readyz?verbose=false", 200, "ok", map[string]string{}},
		{"db down", func() { dbErr.Store("dial tcp: connection refused") }, "GET", "/readyz", 503, "fail",
			map[string]string{"db": "dial tcp: connection refused"}},
		{"db down verbose", nil, "GET", "/readyz?verbose", 503, "fail",
			map[string]string{"db": "dial tcp: connection refused", "cache": ""}},
		{"liveness unaffected", nil, "GET", "/healthz", 200, "ok", map[string]string{}},
		{"draining", func() { dbErr.Store(""); h.SetReady(false) }, "GET", "/readyz", 503, "fail",
			map[string]string{"gate": "not ready: draining"}},
		{"head", nil, "HEAD", "/readyz", 503, "", nil},
		{"post", nil, "POST", "/healthz", 405, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantCode, body)
			}
			if tt.wantChecks == nil {
				if tt.method == "HEAD" && len(body) != 0 {
					t.Errorf("HEAD body = %q, want empty", body)
				}
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			var rep wireReport
			if err := dec.Decode(&rep); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if rep.Status != tt.wantStatus {
				t.Errorf("status member = %q, want %q", rep.Status, tt.wantStatus)
			}
			if rep.Checks == nil {
				t.Errorf("checks member missing in %s", body)
			}
			if len(rep.Checks) != len(tt.wantChecks) {
				t.Errorf("checks = %s, want %v", body, tt.wantChecks)
			}
			for name, wantErr := range tt.wantChecks {
				c, ok := rep.Checks[name]
				wantSt := "ok"
				if wantErr != "" {
					wantSt = "fail"
				}
				if !ok || c.Status != wantSt || c.Error != wantErr {
					t.Errorf("check %q = %+v (present %v), want status %q error %q", name, c, ok, wantSt, wantErr)
				}
			}
		})
	}
}

func TestReportJSONIsStable(t *testing.T) {
	rep := health.Report{Status: "fail", Checks: map[string]health.CheckResult{
		"db":    {Status: "fail", Error: "refused", Duration: 1500 * time.Microsecond},
		"cache": {Status: "ok"},
	}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"status":"fail","checks":{"cache":{"status":"ok"},"db":{"status":"fail","error":"refused","duration":"1.5ms"}}}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
	var back health.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Checks["db"] != rep.Checks["db"] {
		t.Errorf("round trip = %+v, want %+v", back.Checks["db"], rep.Checks["db"])
	}
}

func TestAdminMux(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "svckit_admin_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)

	h := health.New()
	pprof := []health.AdminOption{health.WithPprof()}
	const problem = "application/problem+json"
	tests := []struct {
		name      string
		metrics   http.Handler
		opts      []health.AdminOption
		method    string
		path      string
		wantCode  int
		wantType  string // Content-Type, when it matters
		wantBody  string
		wantAllow string
	}{
		{"metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil, "GET", "/metrics", 200, "", "svckit_admin_test_total 3", ""},
		{"no metrics handler", nil, nil, "GET", "/metrics", 404, problem, `"kind":"not_found"`, ""},
		{"healthz", nil, nil, "GET", "/healthz", 200, "application/json", `"status":"ok"`, ""},
		{"readyz", nil, nil, "GET", "/readyz", 503, "application/json", `"gate"`, ""},
		{"healthz by POST", nil, nil, "POST", "/healthz", 405, problem, `"status":405`, "GET, HEAD"},
		{"unknown path", nil, nil, "GET", "/admin", 404, problem, `"detail":"no route for GET /admin"`, ""},
		{"metrics by POST", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil, "POST", "/metrics", 405, problem, `"kind":"invalid_argument"`, "GET, HEAD"},
		{"metrics by HEAD", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil, "HEAD", "/metrics", 200, "", "", ""},
		{"long unknown path", nil, nil, "GET", "/" + strings.Repeat("a", 1000), 404, problem, `aaa…"`, ""},
		// Profiling is off unless asked for.
		{"pprof off", nil, nil, "GET", "/debug/pprof/", 404, problem, `"kind":"not_found"`, ""},
		{"pprof profile off", nil, nil, "GET", "/debug/pprof/profile?seconds=1", 404, problem, "", ""},
		{"pprof goroutines off", nil, nil, "GET", "/debug/pprof/goroutine?debug=1", 404, problem, "", ""},
		{"pprof index", nil, pprof, "GET", "/debug/pprof/", 200, "", "goroutine", ""},
		{"pprof profile by name", nil, pprof, "GET", "/debug/pprof/goroutine?debug=1", 200, "", "goroutine profile:", ""},
		{"pprof cmdline", nil, pprof, "GET", "/debug/pprof/cmdline", 200, "", "", ""},
		{"pprof symbol", nil, pprof, "GET", "/debug/pprof/symbol", 200, "", "num_symbols", ""},
		{"healthz with pprof", nil, pprof, "GET", "/healthz", 200, "", `"status":"ok"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(health.AdminMux(h, tt.metrics, tt.opts...))
			defer srv.Close()
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.wantCode)
			}
			if ct := resp.Header.Get("Content-Type"); tt.wantType != "" && ct != tt.wantType {
				t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, ct, tt.wantType)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%s %s body does not contain %q:\n%.500s", tt.method, tt.path, tt.wantBody, body)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func BenchmarkReadyCached(b *testing.B) {
	h := health.New()
	h.SetReady(true)
	h.AddReadiness("db", func(context.Context) error { return nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h.Ready(ctx)
	}
}
