package binding_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/binding"
)

func TestParseConfig(t *testing.T) {
	cfg, err := binding.ParseConfig([]byte(`
bindings:
  - name: nightly
    type: cron
    schedule: "0 30 2 * * *"
    claims: store
    timeout: 1m
  - name: jobs
    type: nats-subscribe
    subject: events.jobs.>
    jetstream: true
    backoff: [100ms, 1s]
pipelines:
  - {from: jobs, to: [a, b], timeout: 5s}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Bindings) != 2 || cfg.Bindings[0].Cron == nil || cfg.Bindings[0].Cron.Timeout != time.Minute || cfg.Bindings[0].Line != 3 {
		t.Fatalf("%+v", cfg.Bindings[0])
	}
	if ns := cfg.Bindings[1].NATSSubscribe; ns == nil || !ns.JetStream || len(ns.Backoff) != 2 || ns.Backoff[1] != time.Second {
		t.Fatalf("%+v", cfg.Bindings[1])
	}
	if p := cfg.Pipelines[0]; p.From != "jobs" || len(p.To) != 2 || p.Timeout != 5*time.Second {
		t.Fatalf("%+v", p)
	}

	// LoadConfig names the file in its errors.
	path := filepath.Join(t.TempDir(), "bindings.yaml")
	os.WriteFile(path, []byte("bindings:\n  - {name: x, type: cron, shedule: '@hourly'}\n"), 0o600)
	if _, err := binding.LoadConfig(path); err == nil || !strings.HasPrefix(err.Error(), path+`: binding "x": field "shedule" (line 2): unknown setting`) {
		t.Fatalf("LoadConfig: %v", err)
	}

	// JSON is read the same way, tabs included.
	js, err := binding.ParseConfig([]byte("{\n\t\"bindings\": [\n\t\t{\"name\": \"x\", \"type\": \"http-call\", \"url\": \"http://127.0.0.1:1/\", \"timeout\": \"2s\"}\n\t]\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if h := js.Bindings[0].HTTPCall; h == nil || h.Timeout != 2*time.Second {
		t.Fatalf("%+v", js.Bindings[0])
	}
}

func TestConfigErrors(t *testing.T) {
	mux := http.NewServeMux()
	deps := binding.Deps{Mux: mux, Env: env("SET", "v")}
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "bindings:\n  - name: github\n    type: webhook\n    path: /h\n    secrett: env:X\n",
			`binding "github": field "secrett" (line 5): unknown setting; want one of path, method, secret, unsigned, signature, id_header, headers, max_body`},
		{"missing secret", "bindings:\n  - name: github\n    type: webhook\n    secret: env:GH_SECRET\n    path: /h\n",
			`binding "github": field "secret" (line 2): secrets: GH_SECRET (environment variable GH_SECRET): secret not found`},
		{"nested field", "bindings:\n  - name: github\n    type: webhook\n    path: /h\n    secret: env:SET\n    signature:\n      encoding: b64\n",
			`binding "github": field "signature.encoding" (line 2): "b64": want hex or base64`},
		{"nested unknown", "bindings:\n  - name: github\n    type: webhook\n    path: /h\n    secret: env:SET\n    signature: {hedaer: X}\n",
			`binding "github": field "signature.hedaer" (line 6): unknown setting; want one of header, prefix, encoding, timestamp_header, tolerance`},
		{"wrong type", "bindings:\n  - name: q\n    type: nats-subscribe\n    subject: a\n    concurrency: many\n",
			"binding \"q\": field \"concurrency\" (line 5): cannot unmarshal !!str `many` into int"},
		{"bad duration", "bindings:\n  - name: q\n    type: http-call\n    url: http://x/\n    timeout: 10\n",
			`binding "q": field "timeout" (line 5): "10" is not a duration such as 500ms or 10s`},
		{"unknown type", "bindings:\n  - name: q\n    type: kafka\n",
			`binding "q": field "type" (line 2): "kafka" is unknown; want one of cron, webhook, nats-subscribe, http-call, nats-publish, sql`},
		{"no name", "bindings:\n  - type: cron\n",
			`binding "#1": field "name" (line 2): required`},
		{"bad name", "bindings:\n  - {name: a.b, type: cron, schedule: '@hourly'}\n",
			`binding "a.b": field "name" (line 2): use letters, digits, - and _`},
		{"duplicate name", "bindings:\n  - {name: a, type: cron, schedule: '@hourly'}\n  - {name: a, type: cron, schedule: '@daily'}\n",
			`binding "a": field "name" (line 3): used by another binding`},
		{"bad cron", "bindings:\n  - {name: a, type: cron, schedule: 'every day'}\n",
			`binding "a": field "schedule" (line 2): schedule: "every day": expected 5 to 6 fields, found 2: [every day]`},
		{"claims without store", "bindings:\n  - {name: a, type: cron, schedule: '@hourly', claims: store}\n",
			`binding "a": field "claims" (line 2): store: Deps.Store is not set`},
		{"core option with jetstream setting", "bindings:\n  - {name: a, type: nats-subscribe, subject: x, max_attempts: 3}\n",
			`binding "a": field "max_attempts" (line 2): only with jetstream: true`},
		{"placeholder in host", "bindings:\n  - {name: o, type: http-call, url: 'http://{host}/x'}\n",
			`binding "o": field "url" (line 2): "http://{host}/x": placeholders are allowed in the path and query only`},
		{"pipeline from output", "bindings:\n  - {name: o, type: http-call, url: 'http://x/'}\npipelines:\n  - {from: o, to: [o]}\n",
			`pipeline 1: field "from": "o" is an output binding; want an input`},
		{"pipeline to unknown", "bindings:\n  - {name: c, type: cron, schedule: '@hourly'}\npipelines:\n  - {from: c, to: [nope]}\n",
			`pipeline 1: field "to": no output binding "nope"`},
		{"pipeline unknown key", "pipelines:\n  - {from: c, too: [x]}\n",
			`pipeline 1: field "too" (line 2): unknown setting; want one of from, to, timeout`},
		{"top level", "binding: []\n",
			`binding config: field "binding" (line 1): unknown setting; want bindings or pipelines`},
		{"not yaml", "bindings: [\n",
			`binding config: did not find expected node content`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := binding.ParseConfig([]byte(tt.yaml))
			if err == nil {
				_, err = binding.Open(context.Background(), cfg, deps)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tt.want {
				t.Fatalf("error\n %s\nwant\n %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			var ce *binding.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%T is not a *ConfigError", err)
			}
		})
	}
}

// A secret reference file:PATH reads the file; a missing file is a config error naming
// the binding and field.
func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hook-secret")
	if err := os.WriteFile(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	set := mustOpen(t, "bindings:\n  - {name: h, type: webhook, path: /h, secret: 'file:"+path+"'}\n", binding.Deps{Mux: mux})
	if _, ok := set.Input("h"); !ok {
		t.Fatal("no input")
	}
	_, err := binding.Open(context.Background(), binding.Config{Bindings: []binding.Spec{{Name: "h", Webhook: &binding.WebhookConfig{Path: "/h2", Secret: "file:" + filepath.Join(dir, "missing")}}}}, binding.Deps{Mux: mux})
	if err == nil || !strings.Contains(err.Error(), `binding "h": field "secret"`) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err %v", err)
	}
}

// Two webhooks on one path are a config error, not a panic, and nothing is mounted
// when any binding is broken.
func TestWebhookMount(t *testing.T) {
	mux := http.NewServeMux()
	cfg, err := binding.ParseConfig([]byte(`
bindings:
  - {name: a, type: webhook, path: /dup, unsigned: true}
  - {name: b, type: webhook, path: /dup, unsigned: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = binding.Open(context.Background(), cfg, binding.Deps{Mux: mux})
	if err == nil || !strings.HasPrefix(err.Error(), `binding "b": field "path" (line 4): cannot mount POST /dup: it conflicts with a route on the mux`) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err %v", err)
	}

	mux = http.NewServeMux()
	cfg.Bindings[1] = binding.Spec{Name: "b", Cron: &binding.CronConfig{Schedule: "bad"}}
	if _, err := binding.Open(context.Background(), cfg, binding.Deps{Mux: mux}); err == nil {
		t.Fatal("no error")
	}
	if _, pattern := mux.Handler(httptest.NewRequest(http.MethodPost, "/dup", nil)); pattern != "" {
		t.Fatalf("a webhook of a config that failed is mounted at %q", pattern)
	}
}
