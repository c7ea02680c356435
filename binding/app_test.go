package binding_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/binding"
)

// Bindings in a svckit.App: the webhook is served on the App's HTTP listener, the
// pipeline runs as an App worker, and the metrics appear on the admin listener.
func TestInSvckitApp(t *testing.T) {
	st := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE pings (id TEXT PRIMARY KEY, body TEXT)`); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	app, err := svckit.New(ctx, "pinger", &svckit.Config{}, svckit.Options{
		Stdout:  logs,
		Args:    []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "", "-admin-addr", "127.0.0.1:0"},
		Env:     func(string) (string, bool) { return "", false },
		Signals: []os.Signal{},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := binding.ParseConfig([]byte(`
bindings:
  - {name: ping-hook, type: webhook, path: /hooks/ping, secret: env:PING_SECRET, id_header: X-Delivery}
  - {name: save-ping, type: sql, statement: "INSERT INTO pings (id, body) VALUES (:id, :body)", params: {id: "meta:id", body: data}}
pipelines:
  - {from: ping-hook, to: [save-ping]}
`))
	if err != nil {
		t.Fatal(err)
	}
	set, err := binding.Open(ctx, cfg, binding.Deps{
		Service: app.Name(), Logger: app.Logger(), Registerer: app.Registry(),
		Mux: app.HTTP().Mux(), Store: st, Env: env("PING_SECRET", "k"),
	})
	if err != nil {
		t.Fatal(err)
	}
	app.OnClose("bindings", func(context.Context) error { return set.Close() })
	app.Go("bindings", set.Run)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	httpAddr, err := app.Addr(ctx, "http")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr, err := app.Addr(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + httpAddr.String() + "/hooks/ping"
	waitReady(t, url)

	body := `{"ping":1}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("X-Delivery", "p-1")
	binding.Signature{}.Sign("k", req.Header, []byte(body), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got string
	if err := st.ReadDB().QueryRowContext(ctx, `SELECT body FROM pings WHERE id = 'p-1'`).Scan(&got); err != nil || got != body {
		t.Fatalf("row %q %v", got, err)
	}

	mresp, err := http.Get("http://" + adminAddr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		`svckit_binding_events_total{binding="ping-hook",outcome="ok"} 1`,
		`svckit_binding_events_total{binding="ping-hook",outcome="rejected"} 1`, // waitReady's unsigned probe
		`svckit_binding_invocations_total{binding="save-ping",outcome="ok"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the App did not stop within 20s")
	}
	// The App buffers log lines; they are all written once it stopped.
	if !strings.Contains(logs.String(), `"binding":"ping-hook"`) {
		t.Errorf("the App's log has no line of the binding:\n%s", logs)
	}
}
