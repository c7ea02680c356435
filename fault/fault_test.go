package fault_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
	shttp "github.com/svckit/svckit/transport/http"
)

type req struct {
	A int64 `json:"a"`
}

type resp struct {
	V int64 `json:"v"`
}

// echo is the endpoint under test; it counts the calls that reach it.
type echo struct{ hits atomic.Int64 }

func (e *echo) call(_ context.Context, r req) (resp, error) {
	e.hits.Add(1)
	return resp{V: r.A}, nil
}

// seq returns a WithRand source that yields vs in turn, cyclically.
func seq(vs ...float64) func() float64 {
	var mu sync.Mutex
	n := 0
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		v := vs[n%len(vs)]
		n++
		return v
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRuleChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule fault.Rule
		want string // part of the error, "" for none
	}{
		{"abort", fault.Rule{Method: "catalog.Reserve", AbortPercent: 20}, ""},
		{"delay", fault.Rule{Method: "payments.*", Delay: time.Millisecond}, ""},
		{"both sides", fault.Rule{Method: "*", Side: fault.ServerSide, AbortPercent: 100, Kind: svcerr.Internal}, ""},
		{"no method", fault.Rule{AbortPercent: 1}, "method is empty"},
		{"bad pattern", fault.Rule{Method: "a[", AbortPercent: 1}, "not a valid pattern"},
		{"long method", fault.Rule{Method: strings.Repeat("x", 201), AbortPercent: 1}, "longer than"},
		{"bad side", fault.Rule{Method: "a.B", Side: "both", AbortPercent: 1}, "not server or client"},
		{"negative delay", fault.Rule{Method: "a.B", Delay: -1}, "delay"},
		{"long delay", fault.Rule{Method: "a.B", Delay: time.Hour}, "delay 1h0m0s is not between"},
		{"percent over 100", fault.Rule{Method: "a.B", AbortPercent: 101}, "abort_percent 101"},
		{"negative percent", fault.Rule{Method: "a.B", Delay: time.Second, DelayPercent: -5}, "delay_percent -5"},
		{"nothing", fault.Rule{Method: "a.B"}, "does nothing"},
		{"bad kind", fault.Rule{Method: "a.B", AbortPercent: 1, Kind: 99}, "not a svcerr kind"},
		{"long for", fault.Rule{Method: "a.B", AbortPercent: 1, For: 30 * 24 * time.Hour}, "for 720h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := fault.New().Set(tc.rule)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Set: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Set: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []fault.Rule
		err  string
	}{
		{in: "", want: nil},
		{in: "catalog.Reserve abort=unavailable abort_percent=20 for=10m; payments.Charge delay=300ms",
			want: []fault.Rule{
				{Method: "catalog.Reserve", Kind: svcerr.Unavailable, AbortPercent: 20, For: 10 * time.Minute},
				{Method: "payments.Charge", Delay: 300 * time.Millisecond, DelayPercent: 100},
			}},
		{in: " ; *.Charge side=client abort=deadline_exceeded ;", want: []fault.Rule{
			{Method: "*.Charge", Side: fault.ClientSide, Kind: svcerr.DeadlineExceeded, AbortPercent: 100}}},
		{in: "a.B delay=1s delay_percent=50%", want: []fault.Rule{{Method: "a.B", Delay: time.Second, DelayPercent: 50}}},
		{in: "delay=1s", err: "not a method pattern"},
		{in: "a.B abort=oops", err: `"oops" is not an error kind`},
		{in: "a.B delay=soon", err: "delay"},
		{in: "a.B color=red", err: "unknown key"},
		{in: "a.B delay", err: "not KEY=VALUE"},
		{in: "a.B", err: "does nothing"},
		{in: "a.B abort_percent=x", err: "not a number"},
		{in: strings.Repeat("a.B delay=1s;", 1000), err: "longer than"},
		{in: strings.Repeat("a.B delay=1s;", 65), err: "more than 64"},
	} {
		got, err := fault.ParseRules(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRules(%.40q): %v, want an error containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRules(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("ParseRules(%q) = %+v, want %+v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParseRules(%q)[%d] = %+v, want %+v", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

// call wraps e for info with mws and calls it once.
func call(ctx context.Context, e *echo, info endpoint.Info, mws ...endpoint.Middleware) error {
	_, err := endpoint.Wrap(info, e.call, mws...)(ctx, req{A: 1})
	return err
}

func TestMiddleware(t *testing.T) {
	server := endpoint.Info{Service: "catalog", Method: "Reserve", Transport: "grpc"}
	client := endpoint.Info{Service: "catalog.Catalog", Method: "Reserve", Transport: "grpc", Client: true}
	for _, tc := range []struct {
		name      string
		rule      fault.Rule
		info      endpoint.Info
		rand      float64
		wantKind  svcerr.Kind // Unknown: the call succeeds
		wantDelay bool
	}{
		{"abort picked", fault.Rule{Method: "catalog.Reserve", AbortPercent: 20}, server, 0.19, svcerr.Unavailable, false},
		{"abort not picked", fault.Rule{Method: "catalog.Reserve", AbortPercent: 20}, server, 0.2, svcerr.Unknown, false},
		{"abort kind", fault.Rule{Method: "catalog.*", AbortPercent: 100, Kind: svcerr.ResourceExhausted}, server, 0.99, svcerr.ResourceExhausted, false},
		{"other method", fault.Rule{Method: "catalog.Release", AbortPercent: 100}, server, 0, svcerr.Unknown, false},
		{"server rule, client call", fault.Rule{Method: "*.Reserve", Side: fault.ServerSide, AbortPercent: 100}, client, 0, svcerr.Unknown, false},
		{"client rule, client call", fault.Rule{Method: "*.Reserve", Side: fault.ClientSide, AbortPercent: 100}, client, 0, svcerr.Unavailable, false},
		{"client rule, server call", fault.Rule{Method: "*.Reserve", Side: fault.ClientSide, AbortPercent: 100}, server, 0, svcerr.Unknown, false},
		{"full proto name", fault.Rule{Method: "catalog.Catalog.Reserve", AbortPercent: 100}, client, 0, svcerr.Unavailable, false},
		{"delay", fault.Rule{Method: "*", Delay: 30 * time.Millisecond}, server, 0.5, svcerr.Unknown, true},
		{"delay not picked", fault.Rule{Method: "*", Delay: 30 * time.Millisecond, DelayPercent: 10}, server, 0.5, svcerr.Unknown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inj := fault.New(fault.WithRand(seq(tc.rand)))
			if err := inj.Set(tc.rule); err != nil {
				t.Fatal(err)
			}
			e := &echo{}
			start := time.Now()
			err := call(context.Background(), e, tc.info, inj.Middleware())
			took := time.Since(start)
			if got := svcerr.KindOf(err); err != nil && got != tc.wantKind || err == nil && tc.wantKind != svcerr.Unknown {
				t.Fatalf("error %v (kind %s), want kind %s", err, got, tc.wantKind)
			}
			if err != nil {
				if e.hits.Load() != 0 {
					t.Fatal("an aborted call reached the endpoint")
				}
				if svcerr.From(err).Message != fault.Message {
					t.Fatalf("message %q", svcerr.From(err).Message)
				}
			}
			if tc.wantDelay != (took >= 30*time.Millisecond) {
				t.Fatalf("call took %s, want delayed: %v", took, tc.wantDelay)
			}
		})
	}
}

// TestPercent checks that a 20% abort rule aborts about a fifth of the calls with the real
// random source.
func TestPercent(t *testing.T) {
	inj := fault.New()
	if err := inj.Set(fault.Rule{Method: "*", AbortPercent: 20}); err != nil {
		t.Fatal(err)
	}
	e := &echo{}
	h := endpoint.Wrap(endpoint.Info{Service: "s", Method: "M"}, e.call, inj.Middleware())
	const n = 20000
	failed := 0
	for range n {
		if _, err := h(context.Background(), req{}); err != nil {
			failed++
		}
	}
	if share := float64(failed) / n; share < 0.18 || share > 0.22 {
		t.Fatalf("%d of %d calls aborted (%.3f), want about 0.2", failed, n, share)
	}
}

// TestDelayHonoursDeadline checks that a delay ends with the caller's context.
func TestDelayHonoursDeadline(t *testing.T) {
	inj := fault.New()
	if err := inj.Set(fault.Rule{Method: "*", Delay: time.Minute}); err != nil {
		t.Fatal(err)
	}
	e := &echo{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := call(ctx, e, endpoint.Info{Service: "s", Method: "M"}, resilience.Timeout(time.Second), inj.Middleware())
	if svcerr.KindOf(err) != svcerr.DeadlineExceeded || time.Since(start) > 5*time.Second {
		t.Fatalf("error %v after %s, want deadline_exceeded after about 20ms", err, time.Since(start))
	}
	if e.hits.Load() != 0 {
		t.Fatal("the call went on after its deadline")
	}
}

// TestDelayPastDeadlineFails checks a call whose delay and deadline have both passed by
// the time its goroutine runs (a loaded machine): it fails with the deadline every time,
// though select would pick the delay's end half the time.
func TestDelayPastDeadlineFails(t *testing.T) {
	inj := fault.New()
	if err := inj.Set(fault.Rule{Method: "*", Delay: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	e := &echo{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 200 {
		err := call(ctx, e, endpoint.Info{Service: "s", Method: "M"}, inj.Middleware())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want the context's", err)
		}
	}
	if n := e.hits.Load(); n != 0 {
		t.Fatalf("%d calls went on after their context ended", n)
	}
}

func TestExpiry(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	inj := fault.New(fault.WithClock(clk.now))
	if err := inj.Set(
		fault.Rule{Method: "a.*", AbortPercent: 100, For: time.Minute},
		fault.Rule{Method: "b.*", AbortPercent: 100, For: 2 * time.Minute},
	); err != nil {
		t.Fatal(err)
	}
	rules := inj.Rules()
	if len(rules) != 2 || !rules[0].Until.Equal(clk.now().Add(time.Minute)) || rules[0].For != 0 {
		t.Fatalf("rules %+v, want two, the first until a minute from now", rules)
	}
	e := &echo{}
	a, b := endpoint.Info{Service: "a", Method: "M"}, endpoint.Info{Service: "b", Method: "M"}
	mw := inj.Middleware()
	if call(context.Background(), e, a, mw) == nil || call(context.Background(), e, b, mw) == nil {
		t.Fatal("calls passed while both rules are active")
	}
	clk.add(time.Minute)
	if err := call(context.Background(), e, a, mw); err != nil {
		t.Fatalf("a call after its rule ended: %v", err)
	}
	if call(context.Background(), e, b, mw) == nil || len(inj.Rules()) != 1 {
		t.Fatalf("rule b ended early: %+v", inj.Rules())
	}
	clk.add(time.Minute)
	if err := call(context.Background(), e, b, mw); err != nil {
		t.Fatalf("a call after every rule ended: %v", err)
	}
	if got := inj.Rules(); len(got) != 0 {
		t.Fatalf("rules after they ended: %+v", got)
	}
}

func TestAddRemove(t *testing.T) {
	inj := fault.New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(inj.Add(fault.Rule{Method: "a.B", AbortPercent: 10}))
	must(inj.Add(fault.Rule{Method: "a.B", Side: fault.ClientSide, AbortPercent: 20}))
	must(inj.Add(fault.Rule{Method: "a.B", AbortPercent: 30})) // replaces the first
	rules := inj.Rules()
	if len(rules) != 2 || rules[0].AbortPercent != 30 || rules[1].Side != fault.ClientSide {
		t.Fatalf("rules %+v", rules)
	}
	if inj.Remove("a.B", fault.ServerSide) {
		t.Fatal("removed a rule that is not there")
	}
	if !inj.Remove("a.B", fault.Both) || len(inj.Rules()) != 1 {
		t.Fatalf("after Remove: %+v", inj.Rules())
	}
	inj.Clear()
	if len(inj.Rules()) != 0 {
		t.Fatal("rules after Clear")
	}
	for range fault.MaxRules {
		must(inj.Add(fault.Rule{Method: "m" + strings.Repeat("x", len(inj.Rules())), AbortPercent: 1}))
	}
	if err := inj.Add(fault.Rule{Method: "one.More", AbortPercent: 1}); err == nil {
		t.Fatal("Add beyond MaxRules succeeded")
	}
	if err := inj.Set(fault.Rule{Method: "ok.Rule", AbortPercent: 1}, fault.Rule{Method: ""}); err == nil || len(inj.Rules()) != fault.MaxRules {
		t.Fatalf("Set with an invalid rule: %v, and %d rules (want unchanged)", err, len(inj.Rules()))
	}
}

// TestObserved checks that injected faults are marked in the call's span and counted.
func TestObserved(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	inj := fault.New(fault.WithRand(seq(0)))
	if err := inj.Set(
		fault.Rule{Method: "catalog.Reserve", AbortPercent: 20, Kind: svcerr.Unavailable},
		fault.Rule{Method: "payments.Charge", Delay: time.Millisecond},
	); err != nil {
		t.Fatal(err)
	}
	e := &echo{}
	mws := []endpoint.Middleware{observe.Tracing(tp), inj.Middleware()}
	_ = call(context.Background(), e, endpoint.Info{Service: "catalog", Method: "Reserve"}, mws...)
	_ = call(context.Background(), e, endpoint.Info{Service: "payments", Method: "Charge"}, mws...)
	_ = call(context.Background(), e, endpoint.Info{Service: "payments", Method: "Refund"}, mws...)
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans", len(spans))
	}
	for i, wantKind := range []string{"unavailable", "delay", ""} {
		s := spans[i]
		injected := false
		for _, a := range s.Attributes() {
			if a.Key == fault.InjectedKey && a.Value.AsBool() {
				injected = true
			}
		}
		gotKind := ""
		for _, ev := range s.Events() {
			if ev.Name == "fault.injected" {
				for _, a := range ev.Attributes {
					if a.Key == "fault.kind" {
						gotKind = a.Value.AsString()
					}
				}
			}
		}
		if injected != (wantKind != "") || gotKind != wantKind {
			t.Errorf("span %s: fault.injected %v, event kind %q; want %q", s.Name(), injected, gotKind, wantKind)
		}
	}
	got := counts(t, inj)
	if len(got) != 2 || got["payments.Charge/delay"] != 1 || got["catalog.Reserve/unavailable"] != 1 {
		t.Fatalf("svckit_faults_injected_total %v", got)
	}
}

// counts returns svckit_faults_injected_total by "method/kind", as a registry serves it.
func counts(t *testing.T, inj *fault.Injector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(inj.Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "svckit_faults_injected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			out[l["method"]+"/"+l["kind"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestHeader checks faults asked for per call over real HTTP: honoured only with the
// token, ignored without it.
func TestHeader(t *testing.T) {
	const token = "s3cret-token"
	inj := fault.New(fault.WithHeader(token))
	e := &echo{}
	s := shttp.NewServer("catalog", shttp.WithMiddleware(inj.Middleware()))
	shttp.Handle(s, "POST /reserve", "Reserve", e.call)
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, tc := range []struct {
		name     string
		header   map[string]string
		wantCode int
		wantBody string
	}{
		{"no header", nil, 200, ""},
		{"no token", map[string]string{fault.Header: "abort=unavailable"}, 200, ""},
		{"wrong token", map[string]string{fault.Header: "abort=unavailable", fault.TokenHeader: "guess"}, 200, ""},
		{"authorized abort", map[string]string{fault.Header: "abort=unavailable", fault.TokenHeader: token}, 503, fault.Message},
		{"authorized kind", map[string]string{fault.Header: "abort=permission_denied", fault.TokenHeader: token}, 403, fault.Message},
		{"authorized bad header", map[string]string{fault.Header: "abort=soon", fault.TokenHeader: token}, 400, `\"soon\" is not an error kind`},
		{"token alone", map[string]string{fault.TokenHeader: token}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", srv.URL+"/reserve", strings.NewReader(`{"a":1}`))
			r.RequestURI = ""
			r.Header.Set("Content-Type", "application/json")
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("%d %s, want %d containing %q", resp.StatusCode, b, tc.wantCode, tc.wantBody)
			}
		})
	}
}

// TestUnderRetryAndBreaker runs a client with svckit's retry and breaker against a real
// HTTP server whose endpoint aborts 20% of its calls with Unavailable: the retries hide
// the faults, and the breaker stays closed (a 20% rate is under its 50% threshold; its
// consecutive-failure trip is raised to 20, since 5 in a row happen at 20% once in about
// 3000 attempts).
func TestUnderRetryAndBreaker(t *testing.T) {
	inj := fault.New()
	if err := inj.Set(fault.Rule{Method: "sum.Sum", AbortPercent: 20, Kind: svcerr.Unavailable}); err != nil {
		t.Fatal(err)
	}
	e := &echo{}
	s := shttp.NewServer("sum", shttp.WithMiddleware(inj.Middleware()))
	shttp.Handle(s, "PUT /sum", "Sum", e.call)
	srv := httptest.NewServer(s)
	defer srv.Close()
	var retries atomic.Int64
	var opened atomic.Int64
	breaker := resilience.NewBreaker(resilience.BreakerConfig{ConsecutiveFailures: 20,
		OnStateChange: func(_ string, _, to resilience.State) {
			if to == resilience.Open {
				opened.Add(1)
			}
		}})
	c, err := shttp.NewClient(srv.URL, "sum", shttp.WithClientMiddleware(
		resilience.Retry(resilience.RetryConfig{BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond,
			Budget:  resilience.NewBudget(resilience.BudgetConfig{Ratio: 0.5}),
			OnRetry: func(endpoint.Info, int, error) { retries.Add(1) }}),
		breaker.Middleware()))
	if err != nil {
		t.Fatal(err)
	}
	sum := shttp.Call[req, resp](c, "PUT /sum", "Sum")
	const n = 500
	failed := 0
	for i := range n {
		if _, err := sum(context.Background(), req{A: int64(i)}); err != nil {
			failed++
		}
	}
	injected := counts(t, inj)["sum.Sum/unavailable"]
	t.Logf("%d calls: %d failed after retries, %d retries, %.0f faults injected, breaker opened %d times",
		n, failed, retries.Load(), injected, opened.Load())
	if failed > n/25 || opened.Load() != 0 { // 0.2³ of the requests, 4 expected
		t.Errorf("%d of %d calls failed despite retries", failed, n)
	}
	// Every injected fault was retried, but the last attempt of a request that failed.
	if retries.Load() == 0 || float64(retries.Load()+int64(failed)) != injected {
		t.Errorf("%d retries and %d failed requests for %.0f injected faults", retries.Load(), failed, injected)
	}
}
