package binding_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/binding"
	"github.com/svckit/svckit/svcerr"
)

const hookSecret = "It's a Secret to Everybody"

// githubSig computes the signature the way GitHub documents it, independently of the
// package's own signing code.
func githubSig(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func stampedSig(secret, ts, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestWebhook(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	set := mustOpen(t, `
bindings:
  - name: github
    type: webhook
    path: /hooks/github
    secret: env:GH_SECRET
    signature: {header: X-Hub-Signature-256, prefix: "sha256="}
    id_header: X-GitHub-Delivery
    headers: [X-GitHub-Event]
    max_body: 64
  - name: stamped
    type: webhook
    path: /hooks/stamped
    secret: env:STAMPED_SECRET
    signature: {header: X-Signature, timestamp_header: X-Timestamp, tolerance: 5m}
`, binding.Deps{Mux: mux, Env: env("GH_SECRET", hookSecret, "STAMPED_SECRET", hookSecret), Now: func() time.Time { return now },
		Logger: testLogger(logs), Registerer: reg})

	var calls atomic.Int32
	var last atomic.Pointer[binding.Event]
	fail := atomic.Pointer[error]{}
	h := func(_ context.Context, e binding.Event) error {
		calls.Add(1)
		last.Store(&e)
		if p := fail.Load(); p != nil {
			return *p
		}
		return nil
	}
	for _, name := range []string{"github", "stamped"} {
		in, _ := set.Input(name)
		runInput(t, in, h)
	}
	waitReady(t, srv.URL+"/hooks/github")

	body := `{"action":"opened"}`
	ts := strconv.FormatInt(now.Unix(), 10)
	stale := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
	big := strings.Repeat("x", 65)
	tests := []struct {
		name       string
		path       string
		body       string
		headers    map[string]string
		handlerErr error
		wantStatus int
		wantCalled bool
	}{
		{"good signature", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig(hookSecret, body), "X-GitHub-Delivery": "d-1", "X-GitHub-Event": "issues"}, nil, 204, true},
		{"bad signature", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig("wrong", body)}, nil, 401, false},
		{"signature of another body", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig(hookSecret, body+" ")}, nil, 401, false},
		{"missing signature", "/hooks/github", body, nil, nil, 401, false},
		{"missing prefix", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": strings.TrimPrefix(githubSig(hookSecret, body), "sha256=")}, nil, 401, false},
		{"malformed hex", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": "sha256=zz"}, nil, 401, false},
		{"oversized body", "/hooks/github", big, map[string]string{"X-Hub-Signature-256": githubSig(hookSecret, big)}, nil, 413, false},
		{"handler error is 500", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig(hookSecret, body)}, errors.New("db down: password=hunter2"), 500, true},
		{"unavailable is 503", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig(hookSecret, body)}, svcerr.New(svcerr.Unavailable, "busy"), 503, true},
		{"aborted is 503, not 409", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig(hookSecret, body)}, svcerr.New(svcerr.Aborted, "conflict"), 503, true},
		{"invalid payload is 400", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig(hookSecret, body)}, svcerr.New(svcerr.InvalidArgument, "no action"), 400, true},
		{"fresh timestamp", "/hooks/stamped", body, map[string]string{"X-Signature": stampedSig(hookSecret, ts, body), "X-Timestamp": ts}, nil, 204, true},
		{"stale timestamp", "/hooks/stamped", body, map[string]string{"X-Signature": stampedSig(hookSecret, stale, body), "X-Timestamp": stale}, nil, 401, false},
		{"timestamp changed after signing", "/hooks/stamped", body, map[string]string{"X-Signature": stampedSig(hookSecret, stale, body), "X-Timestamp": ts}, nil, 401, false},
		{"missing timestamp", "/hooks/stamped", body, map[string]string{"X-Signature": stampedSig(hookSecret, ts, body)}, nil, 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			if tt.handlerErr != nil {
				fail.Store(&tt.handlerErr)
			} else {
				fail.Store(nil)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, respBody)
			}
			if got := calls.Load() == 1; got != tt.wantCalled {
				t.Fatalf("handler called: %v, want %v", got, tt.wantCalled)
			}
			if tt.wantStatus >= 400 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("Content-Type %q", ct)
				}
				var p struct{ Status int }
				if err := json.Unmarshal(respBody, &p); err != nil || p.Status != tt.wantStatus {
					t.Errorf("problem %s", respBody)
				}
				if strings.Contains(string(respBody), "hunter2") {
					t.Errorf("the handler's internal error text leaked: %s", respBody)
				}
			}
		})
	}

	t.Run("event", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/github", strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", githubSig(hookSecret, body))
		req.Header.Set("X-GitHub-Delivery", "delivery-42")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Other", "not copied")
		fail.Store(nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		e := last.Load()
		if resp.StatusCode != 204 || e == nil {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if e.Binding != "github" || e.ID != "delivery-42" || e.Subject != "/hooks/github" || string(e.Data) != body ||
			e.Metadata["x-github-event"] != "push" || e.Metadata["x-other"] != "" || !e.Time.Equal(now) || e.Attempt != 1 {
			t.Fatalf("event %+v", *e)
		}
	})

	t.Run("secrets stay out of logs", func(t *testing.T) {
		out := logs.String()
		for _, leak := range []string{hookSecret, strings.TrimPrefix(githubSig(hookSecret, body), "sha256=")} {
			if strings.Contains(out, leak) {
				t.Fatalf("log contains %q:\n%s", leak, out)
			}
		}
		if !strings.Contains(out, "binding=github") {
			t.Fatalf("log lines do not name the binding:\n%s", out)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		// Six rejected cases of the table and the unsigned probe of waitReady.
		if got := counterValue(t, reg, "svckit_binding_events_total", "github", "rejected"); got != 7 {
			t.Errorf("rejected = %v, want 7", got)
		}
		if got := counterValue(t, reg, "svckit_binding_events_total", "github", "error"); got != 4 {
			t.Errorf("error = %v, want 4", got)
		}
	})
}

// counterValue returns the value of a counter of the registry by name and label values,
// 0 when the series does not exist.
func counterValue(t *testing.T, reg *prometheus.Registry, name, binding, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["binding"] == binding && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0 // no such series yet
}

// waitReady waits until the webhook at url stops answering 503 (Run has started).
func waitReady(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post(url, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook not running after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookNotRunning(t *testing.T) {
	mux := http.NewServeMux()
	mustOpen(t, `
bindings:
  - {name: hook, type: webhook, path: /hook, secret: env:S}
`, binding.Deps{Mux: mux, Env: env("S", "s3cret")})
	body := `{}`
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	req.Header.Set(binding.DefaultSignatureHeader, githubSig("s3cret", body)[len("sha256="):])
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	get := httptest.NewRequest(http.MethodGet, "/hook", nil)
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, get)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: status %d, want 405", rec.Code)
	}
}
