package svckit_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/svcerr"
)

// post sends body to url with the header pairs kv and returns the status and body.
func post(t *testing.T, url, body string, kv ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFaultsOffByDefault checks that without FAULT_TOKEN and FAULTS there is no injector,
// no /faults on the admin listener and the header does nothing.
func TestFaultsOffByDefault(t *testing.T) {
	ta := startApp(t)
	if ta.app.Faults() != nil {
		t.Fatal("an injector without FAULT_TOKEN or FAULTS")
	}
	for _, m := range []string{"GET", "PUT"} {
		req, _ := http.NewRequest(m, ta.adminURL+"/faults", strings.NewReader(`{"rules":[]}`))
		req.Header.Set("Authorization", "Bearer ")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("%s /faults: %d, want 404", m, resp.StatusCode)
		}
	}
	if code, body := post(t, ta.httpURL+"/sum", `{"a":1,"b":2}`, fault.Header, "abort=unavailable", fault.TokenHeader, ""); code != 200 {
		t.Fatalf("with a fault header: %d %s", code, body)
	}
}

// TestFaultControl sets faults at run time through the admin listener of a running App and
// sees them in answers, gRPC status codes, client calls, spans and metrics.
func TestFaultControl(t *testing.T) {
	const token = "fault-test-token"
	ta := startApp(t, "-fault-token", token)
	ctx := context.Background()
	c := &fault.Client{URL: ta.adminURL + "/faults", Token: token}
	if code, body := post(t, ta.httpURL+"/sum", `{"a":1,"b":2}`); code != 200 {
		t.Fatalf("before any fault: %d %s", code, body)
	}
	if _, err := c.Add(ctx, fault.Rule{Method: "addsvc.Sum", Side: fault.ServerSide, AbortPercent: 100, Kind: svcerr.Unavailable, For: time.Minute}); err != nil {
		t.Fatal(err)
	}
	code, body := post(t, ta.httpURL+"/sum", `{"a":1,"b":2}`)
	if code != 503 || !strings.Contains(body, fault.Message) {
		t.Fatalf("with 100%% unavailable on addsvc.Sum: %d %s", code, body)
	}
	if code, body := post(t, ta.httpURL+"/concat", `{"a":"x","b":"y"}`); code != 200 {
		t.Fatalf("another method: %d %s", code, body)
	}

	// gRPC, served and called: the server rule gives UNAVAILABLE to a plain client ...
	cc, err := ta.app.Dial(ctx, "addsvc", ta.grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	plain := addsvc.NewGRPCClient(cc)
	if _, err := plain.Sum(ctx, addsvc.SumRequest{A: 1, B: 2}); svcerr.KindOf(err) != svcerr.Unavailable {
		t.Fatalf("gRPC Sum: %v", err)
	}
	// ... and a client rule aborts the App's own calls before they leave.
	if _, err := c.Set(ctx, fault.Rule{Method: "*.Concat", Side: fault.ClientSide, AbortPercent: 100, Kind: svcerr.DeadlineExceeded}); err != nil {
		t.Fatal(err)
	}
	withMW := addsvc.NewGRPCClient(cc, ta.app.GRPCClientOptions()...)
	if _, err := withMW.Concat(ctx, addsvc.ConcatRequest{A: "x", B: "y"}); svcerr.KindOf(err) != svcerr.DeadlineExceeded {
		t.Fatalf("client Concat with a client rule: %v", err)
	}
	if _, err := plain.Concat(ctx, addsvc.ConcatRequest{A: "x", B: "y"}); err != nil {
		t.Fatalf("the server is not affected by a client rule: %v", err)
	}

	// A delay counts against the request's deadline.
	if _, err := c.Set(ctx, fault.Rule{Method: "addsvc.Sum", Delay: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code, body := post(t, ta.httpURL+"/sum", `{"a":1,"b":2}`); code != 200 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("delayed call: %d %s after %s", code, body, time.Since(start))
	}
	start = time.Now()
	if code, _ := post(t, ta.httpURL+"/sum", `{"a":1,"b":2}`, "X-Request-Timeout", "50"); code != 504 || time.Since(start) > 190*time.Millisecond {
		t.Fatalf("delayed call with a 50ms deadline: %d after %s, want 504 at the deadline", code, time.Since(start))
	}
	if err := c.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, ta.httpURL+"/sum", `{"a":1,"b":2}`); code != 200 {
		t.Fatalf("after Clear: %d %s", code, body)
	}

	// The faults are in the metrics ...
	resp, err := http.Get(ta.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`svckit_faults_injected_total{kind="unavailable",method="addsvc.Sum"} 2`,
		`svckit_faults_injected_total{kind="deadline_exceeded",method="addsvc.Add.Concat"}`,
		`svckit_faults_injected_total{kind="delay",method="addsvc.Sum"} 2`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// ... and in the spans.
	if err := ta.app.TracerProvider().ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	injected := map[string]int{}
	for _, s := range ta.exporter.GetSpans() {
		for _, a := range s.Attributes {
			if a.Key == fault.InjectedKey && a.Value.AsBool() {
				injected[s.Name]++
			}
		}
	}
	if injected["addsvc/Sum"] != 4 || injected["addsvc.Add/Concat"] != 1 { // 2 aborts, 2 delays; the client abort
		t.Errorf("spans marked fault.injected: %v", injected)
	}
}

// TestFaultsSetting checks FAULTS at start and FAULT_HEADER for callers with the token.
func TestFaultsSetting(t *testing.T) {
	const token = "hdr-token"
	ta := startApp(t, "-faults", "addsvc.Concat abort=resource_exhausted", "-fault-token", token, "-fault-header")
	if got := ta.app.Faults().Rules(); len(got) != 1 || got[0].Kind != svcerr.ResourceExhausted {
		t.Fatalf("rules from FAULTS: %+v", got)
	}
	if code, _ := post(t, ta.httpURL+"/concat", `{"a":"x","b":"y"}`); code != 429 {
		t.Fatalf("Concat under FAULTS: %d, want 429", code)
	}
	for _, tc := range []struct {
		name string
		kv   []string
		want int
	}{
		{"no header", nil, 200},
		{"header without token", []string{fault.Header, "abort=internal"}, 200},
		{"header with a wrong token", []string{fault.Header, "abort=internal", fault.TokenHeader, "x"}, 200},
		{"header with the token", []string{fault.Header, "abort=internal", fault.TokenHeader, token}, 500},
		{"malformed header with the token", []string{fault.Header, "abort", fault.TokenHeader, token}, 400},
	} {
		if code, body := post(t, ta.httpURL+"/sum", `{"a":1,"b":2}`, tc.kv...); code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
}

func TestFaultSettingsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-faults", "addsvc.Sum abort=sometimes"}, "sometimes"},
		{[]string{"-faults", "delay=1s"}, "not a method pattern"},
		{[]string{"-fault-header"}, "needs FAULT_TOKEN"},
	} {
		_, err := svckit.New(context.Background(), "addsvc", &svckit.Config{}, svckit.Options{
			Stdout: io.Discard, Args: tc.args, Env: func(string) (string, bool) { return "", false }})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}
