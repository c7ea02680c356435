package binding_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/binding"
)

// From configuration alone: a signed GitHub webhook is published to JetStream, and a
// subscription to that subject inserts a row into SQLite; GitHub's redelivery of the
// same delivery id is stored once.
func TestPipelineWebhookToNATSToSQL(t *testing.T) {
	bus, _ := startBus(t)
	st := openStore(t)
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE github_events (delivery TEXT PRIMARY KEY, event TEXT NOT NULL, action TEXT, body TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	reg := prometheus.NewRegistry()
	set := mustOpen(t, `
bindings:
  - name: github
    type: webhook
    path: /hooks/github
    secret: env:GITHUB_WEBHOOK_SECRET
    signature: {header: X-Hub-Signature-256, prefix: "sha256="}
    id_header: X-GitHub-Delivery
    headers: [X-GitHub-Event]
  - name: to-bus
    type: nats-publish
    subject: events.github.{x-github-event}
    jetstream: true
  - name: from-bus
    type: nats-subscribe
    subject: events.github.>
    jetstream: true
    backoff: [10ms]
  - name: store-event
    type: sql
    statement: |
      INSERT INTO github_events (delivery, event, action, body)
      VALUES (:delivery, :event, :action, :body)
      ON CONFLICT (delivery) DO NOTHING
    params: {delivery: "meta:id", event: "meta:x-github-event", body: data}
pipelines:
  - {from: github, to: [to-bus]}
  - {from: from-bus, to: [store-event]}
`, binding.Deps{Service: "audit", Mux: mux, Bus: bus, Store: st, Env: env("GITHUB_WEBHOOK_SECRET", hookSecret), Registerer: reg})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- set.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitReady(t, srv.URL+"/hooks/github")

	post := func(delivery, body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/github", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "issues")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", githubSig(hookSecret, body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	body := `{"action":"opened","issue":{"number":7}}`
	for range 2 { // GitHub redelivers with the same delivery id
		if code := post("72d3162e-cc78-11e3-81ab-4c9367dc0958", body); code != http.StatusNoContent {
			t.Fatalf("status %d", code)
		}
	}
	if code := post("other", `{"action":"closed"}`+" "); code != http.StatusNoContent {
		t.Fatalf("status %d", code)
	}

	var event, action, stored string
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := st.ReadDB().QueryRowContext(ctx, `SELECT event, action, body FROM github_events WHERE delivery = ?`,
			"72d3162e-cc78-11e3-81ab-4c9367dc0958").Scan(&event, &action, &stored)
		if err == nil {
			break
		}
		if !errors.Is(err, sql.ErrNoRows) || time.Now().After(deadline) {
			t.Fatalf("no row after 20s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if event != "issues" || action != "opened" || stored != body {
		t.Fatalf("row %q %q %q", event, action, stored)
	}
	// Both deliveries were handled once the second event's row is there (JetStream
	// drops the repeated delivery id; stream order puts it before "other").
	for {
		var n int
		if err := st.ReadDB().QueryRowContext(ctx, `SELECT COUNT(*) FROM github_events WHERE delivery = 'other'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second event was not stored within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stream, err := bus.JetStream().Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("stream has %d messages, want 2: the redelivered webhook was published twice", info.State.Msgs)
	}
	// The counter is incremented just after the row commits: wait for it.
	for counterValue(t, reg, "svckit_binding_invocations_total", "store-event", "ok") != 2 {
		if time.Now().After(deadline) {
			t.Fatal("store-event was not counted twice within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// When one pipeline's input fails, Run stops the others and returns the error naming
// the binding.
func TestSetRunStopsOnInputError(t *testing.T) {
	bus, _ := startBus(t)
	set := mustOpen(t, `
bindings:
  - {name: tick, type: cron, schedule: "@every 1h"}
  - {name: broken, type: nats-subscribe, subject: not.in.any.stream, jetstream: true}
  - {name: out, type: nats-publish, subject: x}
pipelines:
  - {from: tick, to: [out]}
  - {from: broken, to: [out]}
`, binding.Deps{Bus: bus})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := set.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "binding broken:") || ctx.Err() != nil {
		t.Fatalf("Run: %v (ctx %v)", err, ctx.Err())
	}
}

// A panicking handler fails its event (500 for a webhook) and the input keeps serving.
func TestHandlerPanic(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	logs := &syncBuffer{}
	set := mustOpen(t, "bindings:\n  - {name: hook, type: webhook, path: /h, unsigned: true}\n", binding.Deps{Mux: mux, Logger: testLogger(logs)})
	in, _ := set.Input("hook")
	runInput(t, in, func(_ context.Context, e binding.Event) error {
		if string(e.Data) == "panic" {
			panic("boom")
		}
		return nil
	})
	waitReady(t, srv.URL+"/h")
	for _, tt := range []struct {
		body string
		want int
	}{{"panic", 500}, {"ok", 204}} {
		resp, err := http.Post(srv.URL+"/h", "text/plain", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Fatalf("%s: status %d, want %d", tt.body, resp.StatusCode, tt.want)
		}
	}
	if !strings.Contains(logs.String(), "handler panicked") || !strings.Contains(logs.String(), "binding=hook") {
		t.Fatalf("logs:\n%s", logs)
	}
}

// The W3C trace context of a webhook request reaches the handler at the end of a
// webhook → core NATS → subscriber pipeline, and an http-call sends it on.
func TestTracePropagates(t *testing.T) {
	_, nc := startBus(t)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	seen := make(chan string, 100)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
	}))
	defer target.Close()
	set := mustOpen(t, `
bindings:
  - {name: hook, type: webhook, path: /h, unsigned: true}
  - {name: pub, type: nats-publish, subject: traced}
  - {name: sub, type: nats-subscribe, subject: traced}
  - {name: probe, type: nats-publish, subject: traced, request: true, timeout: 200ms}
  - {name: call, type: http-call, url: "`+target.URL+`"}
pipelines:
  - {from: hook, to: [pub]}
  - {from: sub, to: [call]}
`, binding.Deps{Mux: mux, NATS: nc})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	defer func() { cancel(); <-done }()
	probe, _ := set.Output("probe")
	waitSubscribed(t, probe)
	waitReady(t, srv.URL+"/h") // the probes go through the pipeline too, without a trace

	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/h", strings.NewReader("{}"))
	req.Header.Set("Traceparent", tp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case got := <-seen:
			if strings.HasPrefix(got, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
				return
			}
			if got != "" {
				t.Fatalf("traceparent at the end %q, want trace 4bf92f…", got)
			}
		case <-timeout:
			t.Fatal("the traced request did not arrive within 20s")
		}
	}
}
