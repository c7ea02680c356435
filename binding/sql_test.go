package binding_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svckit/svckit/binding"
	"github.com/svckit/svckit/svcerr"
)

func TestSQL(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE audit (id TEXT PRIMARY KEY, actor TEXT, amount REAL, n INTEGER, ok BOOLEAN, tags TEXT, body TEXT, note TEXT)`); err != nil {
		t.Fatal(err)
	}
	set := mustOpen(t, `
bindings:
  - name: audit
    type: sql
    statement: |
      -- a comment with :not_a_param and a question?
      INSERT INTO audit (id, actor, amount, n, ok, tags, body, note)
      VALUES (:id, :actor, :amount, :n, :ok, :tags, :body, ':literal::text')
    params: {id: "meta:id", actor: "json:user.name", body: data}
  - name: find
    type: sql
    statement: SELECT id, actor, n, note FROM audit WHERE n >= :min ORDER BY id
`, binding.Deps{Store: st})
	audit, _ := set.Output("audit")
	find, _ := set.Output("find")
	data := `{"user":{"name":"ann'); DROP TABLE audit; --"},"amount":12.5,"n":7,"ok":true,"tags":["a","b"]}`
	resp, err := audit.Invoke(ctx, binding.Request{Data: []byte(data), Metadata: map[string]string{"id": "e1"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Metadata["rows_affected"] != "1" {
		t.Fatalf("response %+v", resp)
	}
	var actor, tags, body, note string
	var amount float64
	var n int
	if err := st.ReadDB().QueryRowContext(ctx, `SELECT actor, amount, n, tags, body, note FROM audit WHERE id = 'e1'`).Scan(&actor, &amount, &n, &tags, &body, &note); err != nil {
		t.Fatal(err)
	}
	if actor != "ann'); DROP TABLE audit; --" || amount != 12.5 || n != 7 || tags != `["a","b"]` || body != data || note != ":literal::text" {
		t.Fatalf("row %q %v %d %q %q %q", actor, amount, n, tags, body, note)
	}

	tests := []struct {
		name string
		req  binding.Request
		kind svcerr.Kind
		msg  string
	}{
		{"missing field", binding.Request{Data: []byte(`{"user":{"name":"x"},"amount":1,"n":1,"ok":true}`), Metadata: map[string]string{"id": "e2"}}, svcerr.InvalidArgument, `parameter :tags: the request data has no field "tags"`},
		{"missing nested field", binding.Request{Data: []byte(`{"user":{},"amount":1,"n":1,"ok":true,"tags":null}`), Metadata: map[string]string{"id": "e2"}}, svcerr.InvalidArgument, `parameter :actor: the request data has no field "user.name"`},
		{"missing metadata", binding.Request{Data: []byte(data)}, svcerr.InvalidArgument, `parameter :id: metadata "id" is missing`},
		{"not JSON", binding.Request{Data: []byte(`[1]`), Metadata: map[string]string{"id": "e2"}}, svcerr.InvalidArgument, "not a JSON object"},
		{"duplicate key", binding.Request{Data: []byte(data), Metadata: map[string]string{"id": "e1"}}, svcerr.AlreadyExists, "statement failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.Invoke(ctx, tt.req)
			if svcerr.KindOf(err) != tt.kind || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err %v, want kind %s containing %q", err, tt.kind, tt.msg)
			}
		})
	}

	resp, err = find.Invoke(ctx, binding.Request{Data: []byte(`{"min":5}`)})
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(resp.Data, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0]["id"] != "e1" || rows[0]["n"] != float64(7) || resp.Metadata["rows"] != "1" {
		t.Fatalf("rows %s", resp.Data)
	}
}

// A sql output may open a store of its own, with the DSN in a secret.
func TestSQLOwnStore(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "own.db")
	set := mustOpen(t, `
bindings:
  - {name: make, type: sql, dsn: "env:AUDIT_DSN", statement: "CREATE TABLE t (v TEXT)"}
  - {name: put, type: sql, dsn: "env:AUDIT_DSN", statement: "INSERT INTO t (v) VALUES (:v)"}
  - {name: get, type: sql, dsn: "env:AUDIT_DSN", statement: "SELECT v FROM t"}
`, binding.Deps{Env: env("AUDIT_DSN", dsn)})
	ctx := context.Background()
	for _, step := range []struct{ out, data string }{{"make", ""}, {"put", `{"v":"x"}`}} {
		out, _ := set.Output(step.out)
		if _, err := out.Invoke(ctx, binding.Request{Data: []byte(step.data)}); err != nil {
			t.Fatalf("%s: %v", step.out, err)
		}
	}
	get, _ := set.Output("get")
	resp, err := get.Invoke(ctx, binding.Request{})
	if err != nil || string(resp.Data) != `[{"v":"x"}]` {
		t.Fatalf("%s %v", resp.Data, err)
	}
}

func TestSQLConfigErrors(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		name, cfg, want string
	}{
		{"positional", `{name: q, type: sql, statement: "SELECT * FROM t WHERE a = ?"}`, `binding "q": field "statement" (line 3): positional ? at byte 26; use named parameters such as :id`},
		{"unknown param", `{name: q, type: sql, statement: "SELECT :a", params: {b: "meta:b"}}`, `binding "q": field "params.b" (line 3): the statement has no parameter :b`},
		{"bad source", `{name: q, type: sql, statement: "SELECT :a", params: {a: "env:A"}}`, `binding "q": field "params.a" (line 3): "env:A": want json:PATH, meta:KEY or data`},
		{"unterminated", `{name: q, type: sql, statement: "SELECT 'abc"}`, `binding "q": field "statement" (line 3): unterminated ' quote at byte 7`},
		{"bad mode", `{name: q, type: sql, statement: "SELECT 1", mode: run}`, `binding "q": field "mode" (line 3): "run": want exec or query`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := binding.ParseConfig([]byte("bindings:\n\n  - " + tt.cfg + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = binding.Open(context.Background(), cfg, binding.Deps{Store: st})
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err\n %v\nwant\n %s", err, tt.want)
			}
		})
	}
}
