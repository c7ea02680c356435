package svckit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/svckit/svckit"
	shttp "github.com/svckit/svckit/transport/http"
)

// scrape reads the admin listener's /metrics in the Prometheus text format, as a scraper
// that does not negotiate OpenMetrics or protobuf does.
func scrape(t *testing.T, adminURL string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, adminURL+"/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("metrics content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// counter returns the value of the series of family name whose labels include want.
func counter(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// TestRejectedRequestsAreCountedAndLogged sends requests the HTTP server refuses before
// any endpoint runs and finds each in a Prometheus text scrape of the admin listener and
// in the access log: under the route's method, or "unmatched" when no route matched.
func TestRejectedRequestsAreCountedAndLogged(t *testing.T) {
	ta := startApp(t, "-max-body-bytes", "64")
	send := func(method, path, ctype, body string, status int) {
		t.Helper()
		req, _ := http.NewRequest(method, ta.httpURL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != status || resp.Header.Get("Content-Type") != shttp.ProblemContentType {
			t.Fatalf("%s %s: %d %s %s, want %d problem+json", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), raw, status)
		}
	}
	send("POST", "/sum", "application/json", `{"a":`, 400)
	send("POST", "/sum", "application/json", strings.Repeat(" ", 100), 413)
	send("POST", "/sum", "text/plain", `{}`, 415)
	send("GET", "/no/such/route", "", "", 404)
	send("GET", "/another/unknown/path", "", "", 404)
	send("DELETE", "/sum", "", "", 405)

	base := map[string]string{"service": "addsvc", "transport": "http", "side": "server"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	fams := scrape(t, ta.adminURL)
	for _, tc := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"svckit_requests_total", with("method", "Sum"), 3},
		{"svckit_request_errors_total", with("method", "Sum", "kind", "invalid_argument"), 2}, // 400, 415
		{"svckit_request_errors_total", with("method", "Sum", "kind", "resource_exhausted"), 1},
		{"svckit_requests_total", with("method", shttp.UnmatchedMethod), 3},
		{"svckit_request_errors_total", with("method", shttp.UnmatchedMethod, "kind", "not_found"), 2},
		{"svckit_request_errors_total", with("method", shttp.UnmatchedMethod, "kind", "invalid_argument"), 1}, // 405
	} {
		if got := counter(fams, tc.family, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
		}
	}
	// The paths of unmatched requests never become label values.
	for _, m := range fams["svckit_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), "/") {
				t.Errorf("label %s=%q", l.GetName(), l.GetValue())
			}
		}
	}

	// The access log has a line for each, with its kind and duration in milliseconds.
	kinds := map[string]int{}
	deadline := time.Now().Add(5 * time.Second)
	for {
		kinds = map[string]int{}
		for _, l := range ta.logs.lines() {
			if l["msg"] != "request" || l["transport"] != "http" {
				continue
			}
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Fatalf("access log line without duration_ms: %v", l)
			}
			kinds[l["rpc_method"].(string)+" "+l["kind"].(string)]++
		}
		if len(kinds) == 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the log writer flushes on a timer
	}
	want := map[string]int{"Sum invalid_argument": 2, "Sum resource_exhausted": 1, "unmatched not_found": 2, "unmatched invalid_argument": 1}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("access log lines %q: %d, want %d (all: %v)", k, kinds[k], n, kinds)
		}
	}
}

// TestH2CFromTheApp calls the App's HTTP listener with cleartext HTTP/2 from the first
// byte (curl --http2-prior-knowledge) and with HTTP/1.1.
func TestH2CFromTheApp(t *testing.T) {
	ta := startApp(t)
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		if h2 {
			tr.Protocols.SetUnencryptedHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		req, _ := http.NewRequest(http.MethodPost, ta.httpURL+"/sum", strings.NewReader(`{"a":1,"b":2}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatalf("h2c %v: %v", h2, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		wantMajor := 1
		if h2 {
			wantMajor = 2
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != wantMajor || strings.TrimSpace(string(body)) != `{"v":3}` {
			t.Fatalf("%s %d %s", resp.Proto, resp.StatusCode, body)
		}
	}
}

// TestCORSFromConfig turns CORS on with the cors-origins setting and refuses an origin
// that is not one.
func TestCORSFromConfig(t *testing.T) {
	ta := startApp(t, "-cors-origins", "https://app.example.com")
	for origin, want := range map[string]int{"https://app.example.com": 204, "https://evil.example": 403} {
		req, _ := http.NewRequest(http.MethodOptions, ta.httpURL+"/sum", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("preflight from %s: %d, want %d", origin, resp.StatusCode, want)
		}
		if allowed := resp.Header.Get("Access-Control-Allow-Origin") == origin; allowed != (want == 204) {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q", origin, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	// Without the setting, no CORS headers.
	plain := startApp(t)
	req, _ := http.NewRequest(http.MethodPost, plain.httpURL+"/sum", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://app.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("CORS off by default, but Access-Control-Allow-Origin %q", got)
	}
}

func TestCORSOriginsValidated(t *testing.T) {
	for _, origins := range []string{"app.example.com", "https://app.example.com/path"} {
		env := map[string]string{"CORS_ORIGINS": origins}
		_, err := svckit.New(context.Background(), "addsvc", &svckit.Config{}, svckit.Options{
			Stdout: io.Discard, Args: []string{}, Signals: []os.Signal{},
			Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		})
		if err == nil || !strings.Contains(err.Error(), "CORS") {
			t.Errorf("CORS_ORIGINS=%s: err %v, want a CORS error", origins, err)
		}
	}
}

// TestAdminErrorsAreProblems: the admin listener's 404 and 405 are problem+json.
func TestAdminErrorsAreProblems(t *testing.T) {
	ta := startApp(t)
	for _, tc := range []struct {
		method, path string
		status       int
		kind         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"POST", "/readyz", 405, "invalid_argument"},
		{"POST", "/metrics", 405, "invalid_argument"},
		{"DELETE", "/healthz", 405, "invalid_argument"},
	} {
		req, _ := http.NewRequest(tc.method, ta.adminURL+tc.path, bytes.NewReader(nil))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var p shttp.Problem
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != shttp.ProblemContentType ||
			json.Unmarshal(body, &p) != nil || p.Status != tc.status || p.Kind != tc.kind || p.Title == "" {
			t.Errorf("%s %s: %d %s %s, want %d problem+json kind %s", tc.method, tc.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), body, tc.status, tc.kind)
		}
	}
}
