package binding_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/svckit/svckit/binding"
)

// BenchmarkWebhook measures signed webhook requests over loopback HTTP, verified and
// handed to a handler that does nothing.
func BenchmarkWebhook(b *testing.B) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cfg, _ := binding.ParseConfig([]byte(`
bindings:
  - {name: hook, type: webhook, path: /h, secret: env:S, signature: {header: X-Hub-Signature-256, prefix: "sha256="}}
`))
	set, err := binding.Open(context.Background(), cfg, binding.Deps{Mux: mux, Env: func(string) (string, bool) { return "s", true }})
	if err != nil {
		b.Fatal(err)
	}
	in, _ := set.Input("hook")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go in.Run(ctx, func(context.Context, binding.Event) error { return nil })
	waitReady(b, srv.URL+"/h")
	body := strings.Repeat(`{"action":"opened","n":12345}`, 30) // ~900 bytes
	sig := githubSig("s", body)
	client := srv.Client()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/h", strings.NewReader(body))
			req.Header.Set("X-Hub-Signature-256", sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkSQLInsert measures the sql output inserting one row per invocation into a
// SQLite file, from 16 callers per CPU (group commit).
func BenchmarkSQLInsert(b *testing.B) {
	st := openStore(b)
	st.DB().Exec(`CREATE TABLE audit (id TEXT PRIMARY KEY, actor TEXT, body TEXT)`)
	cfg, _ := binding.ParseConfig([]byte(`
bindings:
  - {name: audit, type: sql, statement: "INSERT INTO audit (id, actor, body) VALUES (:id, :actor, :body)", params: {id: "meta:id", body: data}}
`))
	set, err := binding.Open(context.Background(), cfg, binding.Deps{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	out, _ := set.Output("audit")
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprint("e", n.Add(1))
			if _, err := out.Invoke(context.Background(), binding.Request{Data: []byte(`{"actor":"ann"}`), Metadata: map[string]string{"id": id}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
