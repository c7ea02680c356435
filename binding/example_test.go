package binding_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svckit/svckit/binding"
	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/store"
)

// A pipeline from configuration alone: signed webhook requests become rows.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "binding")
	defer os.RemoveAll(dir)
	st, _ := store.Open(ctx, "sqlite:"+filepath.Join(dir, "svc.db"))
	defer st.Close()
	st.DB().ExecContext(ctx, `CREATE TABLE signups (id TEXT PRIMARY KEY, email TEXT)`)

	cfg, err := binding.ParseConfig([]byte(`
bindings:
  - name: signup-hook
    type: webhook
    path: /hooks/signup
    secret: env:SIGNUP_SECRET
    id_header: X-Delivery
  - name: save-signup
    type: sql
    statement: INSERT INTO signups (id, email) VALUES (:id, :email)
    params: {id: "meta:id"}
pipelines:
  - {from: signup-hook, to: [save-signup]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux() // in a service: app.HTTP().Mux()
	lookup := func(string) (string, bool) { return "s3cret", true }
	set, err := binding.Open(ctx, cfg, binding.Deps{Mux: mux, Store: st, Env: lookup})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer set.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- set.Run(runCtx) }() // in a service: app.Go("bindings", set.Run)

	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := []byte(`{"email":"ann@example.com"}`)
	post := func() int { // what the sender does
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/signup", strings.NewReader(string(body)))
		req.Header.Set("X-Delivery", "d-1")
		binding.Signature{}.Sign("s3cret", req.Header, body, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	code := post()
	for code == http.StatusServiceUnavailable { // until Run has started
		time.Sleep(time.Millisecond)
		code = post()
	}
	fmt.Println(code)
	stop()
	<-done

	var id, email string
	st.ReadDB().QueryRowContext(ctx, `SELECT id, email FROM signups`).Scan(&id, &email)
	fmt.Println(id, email)
	// Output:
	// 204
	// d-1 ann@example.com
}

// Signing and verifying in GitHub's scheme.
func ExampleSignature() {
	github := binding.Signature{Header: "X-Hub-Signature-256", Prefix: "sha256="}
	body := []byte("Hello, World!")
	h := http.Header{}
	github.Sign(config.Secret("It's a Secret to Everybody"), h, body, time.Now())
	fmt.Println(h.Get("X-Hub-Signature-256"))
	fmt.Println(github.Verify("It's a Secret to Everybody", h, body, time.Now()))
	fmt.Println(github.Verify("It's a Secret to Everybody", h, []byte("Hello, World?"), time.Now()))
	// Output:
	// sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17
	// <nil>
	// unauthenticated: signature does not match
}

// An input run by the caller with its own handler, as a worker of svckit.App.
func ExampleInput() {
	cfg := binding.Config{Bindings: []binding.Spec{{
		Name: "heartbeat",
		Cron: &binding.CronConfig{Schedule: "@every 10ms", Data: `{"ping":true}`},
	}}}
	set, err := binding.Open(context.Background(), cfg, binding.Deps{})
	if err != nil {
		fmt.Println(err)
		return
	}
	in, _ := set.Input("heartbeat")
	ctx, cancel := context.WithCancel(context.Background())
	in.Run(ctx, func(ctx context.Context, e binding.Event) error { // app.Go("heartbeat", …)
		fmt.Println(e.Binding, string(e.Data))
		cancel()
		return nil
	})
	// Output: heartbeat {"ping":true}
}
