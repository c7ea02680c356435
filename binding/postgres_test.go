//go:build integration

package binding_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/binding"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// postgresStore opens the server of SVCKIT_TEST_POSTGRES_DSN in a schema of its own,
// skipping the test when the variable is not set.
func postgresStore(t *testing.T) *store.Store {
	t.Helper()
	dsn := os.Getenv("SVCKIT_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("SVCKIT_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	admin, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("binding_%d", time.Now().UnixNano())
	if _, err := admin.DB().ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a, err := store.Open(context.Background(), dsn); err == nil {
			a.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := store.Open(ctx, dsn+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestSQLPostgres(t *testing.T) {
	st := postgresStore(t)
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, `CREATE TABLE audit (id TEXT PRIMARY KEY, n INTEGER, tags JSONB, note TEXT)`); err != nil {
		t.Fatal(err)
	}
	set := mustOpen(t, `
bindings:
  - name: audit
    type: sql
    statement: |
      INSERT INTO audit (id, n, tags, note)
      VALUES (:id, :n, :tags::jsonb, $q$ :not_a_param ' $q$) RETURNING id, n + 1 AS next
    params: {id: "meta:id"}
  - name: find
    type: sql
    statement: SELECT id, tags->>0 AS first FROM audit WHERE n >= :min ORDER BY id
`, binding.Deps{Store: st})
	audit, _ := set.Output("audit")
	resp, err := audit.Invoke(ctx, binding.Request{Data: []byte(`{"n":41,"tags":["a","b"]}`), Metadata: map[string]string{"id": "e1"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Data) != `[{"id":"e1","next":42}]` {
		t.Fatalf("RETURNING rows %s", resp.Data)
	}
	var note string
	if err := st.DB().QueryRowContext(ctx, `SELECT note FROM audit WHERE id = 'e1'`).Scan(&note); err != nil || note != " :not_a_param ' " {
		t.Fatalf("note %q %v", note, err)
	}
	_, err = audit.Invoke(ctx, binding.Request{Data: []byte(`{"n":1,"tags":[]}`), Metadata: map[string]string{"id": "e1"}})
	if svcerr.KindOf(err) != svcerr.AlreadyExists {
		t.Fatalf("duplicate: %v, want already_exists", err)
	}
	find, _ := set.Output("find")
	resp, err = find.Invoke(ctx, binding.Request{Data: []byte(`{"min":40}`)})
	if err != nil || string(resp.Data) != `[{"first":"a","id":"e1"}]` {
		t.Fatalf("find %s %v", resp.Data, err)
	}
}
