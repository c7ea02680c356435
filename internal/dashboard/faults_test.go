package dashboard_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// faultApp runs addsvc as a real svckit App on loopback ports with FAULT_TOKEN=token (none
// if ""), and returns its instance as devrun gives it to the dashboard, and its HTTP URL.
func faultApp(t *testing.T, id, token string) (*devrun.Instance, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "", "-admin-addr", "127.0.0.1:0"}
	env := []string{"INSTANCE_ID=" + id}
	if token != "" {
		args = append(args, "-fault-token", token)
		env = append(env, "FAULT_TOKEN=ignored-an-earlier-one", "FAULT_TOKEN="+token) // the last one wins
	}
	app, err := svckit.New(ctx, "addsvc", &svckit.Config{}, svckit.Options{Stdout: &syncWriter{}, Args: args,
		Env: func(string) (string, bool) { return "", false }, Signals: []os.Signal{}})
	if err != nil {
		t.Fatal(err)
	}
	addsvc.RegisterHTTP(app.HTTP(), addsvc.MakeEndpoints(addsvc.New()))
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	admin, err := app.Addr(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, _ := app.Addr(ctx, "http")
	eventually(t, id+" ready", func() bool {
		resp, err := http.Get("http://" + admin.String() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return &devrun.Instance{Service: "addsvc", ID: id, Env: env,
		Addrs: map[string]string{"http": httpAddr.String(), "admin": admin.String()}}, "http://" + httpAddr.String()
}

// TestFaultsAPI sets, lists and clears faults through the dashboard on two real App
// instances and a third without fault control, and sees the faults in their answers.
func TestFaultsAPI(t *testing.T) {
	in1, url1 := faultApp(t, "addsvc-1", "tok-1")
	in2, url2 := faultApp(t, "addsvc-2", "tok-2")
	m := &devrun.Manifest{Name: "faults", Services: []devrun.Service{{Name: "addsvc", Replicas: 2}, {Name: "other", Replicas: 1}}}
	sys := &devrun.System{Manifest: m, Logs: devrun.NewLogStore(0), Traces: devrun.NewTraceStore(0), Instances: []*devrun.Instance{in1, in2}}
	sys.Metrics = devrun.NewMetricsStore(sys)
	const secret = "s3cret"
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil), dashboard.WithSecret(secret)))
	defer srv.Close()
	sum := func(url string) int {
		resp, err := http.Post(url+"/sum", "application/json", strings.NewReader(`{"a":1,"b":2}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	views := func(body string) []dashboard.FaultsView {
		t.Helper()
		var v []dashboard.FaultsView
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
		return v
	}

	steps := []struct {
		name, method, path, secret, body string
		code                             int
		want                             string
	}{
		{"no secret", "POST", "/api/faults/addsvc", "", `{"method":"addsvc.Sum","abort":"unavailable"}`, 403, ""},
		{"unknown service", "POST", "/api/faults/nosuch", secret, `{"method":"a.B","abort":"unavailable"}`, 404, "no service nosuch"},
		{"no instance", "POST", "/api/faults/other", secret, `{"method":"a.B","abort":"unavailable"}`, 409, "no running instance"},
		{"invalid rule", "POST", "/api/faults/addsvc", secret, `{"method":"addsvc.Sum","abort_percent":120}`, 400, "abort_percent 120"},
		{"unknown member", "POST", "/api/faults/addsvc", secret, `{"method":"addsvc.Sum","abort":"unavailable","rate":1}`, 400, "unknown field"},
		{"not json", "POST", "/api/faults/addsvc", secret, `abort`, 400, "not a fault rule"},
		{"add", "POST", "/api/faults/addsvc", secret, `{"method":"addsvc.Sum","abort":"unavailable","for":"60s"}`, 200, `"instance":"addsvc-2"`},
		{"add delay", "POST", "/api/faults/addsvc", secret, `{"method":"addsvc.Concat","delay":"1ms","side":"server"}`, 200, `"delay":"1ms"`},
		{"list", "GET", "/api/faults", "", "", 200, `"method":"addsvc.Concat"`},
	}
	for _, s := range steps {
		code, body, _ := secretCall(t, s.method, srv.URL+s.path, s.secret, s.body)
		if code != s.code || !strings.Contains(body, s.want) {
			t.Fatalf("%s: %d %s, want %d with %q", s.name, code, body, s.code, s.want)
		}
	}
	for _, u := range []string{url1, url2} {
		if code := sum(u); code != 503 {
			t.Fatalf("Sum on %s under the fault: %d", u, code)
		}
	}
	_, body, _ := secretCall(t, "GET", srv.URL+"/api/faults", "", "")
	for _, v := range views(body) {
		if v.Error != "" || len(v.Rules) != 2 || v.Rules[0].Until.Before(time.Now().Add(50*time.Second)) {
			t.Fatalf("%s: %+v", v.Instance, v)
		}
	}

	// Remove one rule, then clear the rest.
	code, body, _ := secretCall(t, "DELETE", srv.URL+"/api/faults/addsvc?method=addsvc.Sum", secret, "")
	if code != 200 {
		t.Fatalf("DELETE one: %d %s", code, body)
	}
	for _, v := range views(body) {
		if len(v.Rules) != 1 || v.Rules[0].Method != "addsvc.Concat" {
			t.Fatalf("after DELETE one, %s: %+v", v.Instance, v.Rules)
		}
	}
	if code := sum(url1); code != 200 {
		t.Fatalf("Sum after the rule was removed: %d", code)
	}
	if code, body, _ = secretCall(t, "DELETE", srv.URL+"/api/faults/addsvc?method=addsvc.Sum", secret, ""); code != 200 {
		t.Fatalf("DELETE of a rule that is gone: %d %s", code, body)
	}
	if code, body, _ = secretCall(t, "DELETE", srv.URL+"/api/faults/addsvc", secret, ""); code != 200 {
		t.Fatalf("DELETE all: %d %s", code, body)
	}
	for _, in := range []*devrun.Instance{in1, in2} {
		c := &fault.Client{URL: "http://" + in.Addrs["admin"] + "/faults", Token: map[string]string{"addsvc-1": "tok-1", "addsvc-2": "tok-2"}[in.ID]}
		if rules, err := c.List(context.Background()); err != nil || len(rules) != 0 {
			t.Fatalf("%s after DELETE all: %+v, %v", in.ID, rules, err)
		}
	}

	// An instance without fault control, or one that is gone, is reported, not hidden.
	in3, _ := faultApp(t, "addsvc-3", "")
	gone := &devrun.Instance{Service: "addsvc", ID: "addsvc-4", Env: []string{"FAULT_TOKEN=x"}, Addrs: map[string]string{"admin": "127.0.0.1:1"}}
	sys.Instances = append(sys.Instances, in3, gone)
	code, body, _ = secretCall(t, "POST", srv.URL+"/api/faults/addsvc", secret, `{"method":"*","abort":"internal","abort_percent":1}`)
	if code != 502 {
		t.Fatalf("POST with an instance without control: %d %s", code, body)
	}
	for _, v := range views(body) {
		switch v.Instance {
		case "addsvc-3":
			if !strings.Contains(v.Error, "no FAULT_TOKEN") {
				t.Errorf("addsvc-3: %+v", v)
			}
		case "addsvc-4":
			if v.Error != "the instance's admin listener did not answer" {
				t.Errorf("addsvc-4: %+v", v)
			}
		default:
			if v.Error != "" || len(v.Rules) != 1 {
				t.Errorf("%s: %+v", v.Instance, v)
			}
		}
	}
}
