package saga

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/svckit/svckit/store"
	_ "github.com/svckit/svckit/store/sqlite"
)

// TestMigrateKeepsSagas applies the first two migrations, records a running saga, its
// steps and its owner the way those tables held them, then migrates to the current
// schema (the tables rebuilt WITHOUT ROWID on SQLite) and checks that every row is still
// there and that the saga is resumed and runs to its end from its checkpoint.
func TestMigrateKeepsSagas(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "saga.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := fstest.MapFS{}
	for _, name := range []string{"001_saga.sql", "002_owners.sql"} {
		b, err := fs.ReadFile(migrations, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		old["migrations/"+name] = &fstest.MapFile{Data: b}
	}
	if err := st.Migrate(ctx, old, store.WithSet("saga"), store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO saga_owners (owner, instance, since, seen) VALUES ('local', 'gone', 1, 1)`,
		`INSERT INTO saga_instances (id, name, status, step, state, error, owner, lease_until, created_at, updated_at)
			VALUES ('s1', 'two', 'running', 1, '{"n":1}', '', 'local', 0, 1, 2)`,
		`INSERT INTO saga_instances (id, name, status, step, state, error, owner, lease_until, created_at, updated_at)
			VALUES ('s0', 'two', 'completed', 2, '{"n":2}', '', 'local', 0, 1, 2)`,
		`INSERT INTO saga_steps (saga_id, step, phase, name, error, at) VALUES ('s1', 0, 'action', 'a', '', 1)`,
		`INSERT INTO saga_steps (saga_id, step, phase, name, error, at) VALUES ('s0', 0, 'action', 'a', '', 1), ('s0', 1, 'action', 'b', '', 2)`,
	} {
		if _, err := st.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	type state struct{ N int }
	def := Define("two",
		Step[state]{Name: "a", Action: func(context.Context, *state) error { t.Error("step a ran again"); return nil }},
		Step[state]{Name: "b", Action: func(_ context.Context, s *state) error { s.N++; return nil }},
	)
	o, err := New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close(ctx)
	for _, table := range []string{"saga_instances", "saga_steps", "saga_owners"} {
		var sql string
		if err := st.DB().QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = ?`, table).Scan(&sql); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(sql, "WITHOUT ROWID") {
			t.Errorf("%s: %s; want a table WITHOUT ROWID", table, sql)
		}
	}
	if err := o.Register(def); err != nil {
		t.Fatal(err)
	}
	if n, err := o.Resume(ctx); err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v; want 1 saga", n, err)
	}
	s, err := o.Wait(ctx, "s1")
	if err != nil || s.State != Completed || string(s.Data) != `{"N":2}` {
		t.Fatalf("s1 = %+v, %v; want completed with N 2", s, err)
	}
	for _, tc := range []struct {
		id    string
		state State
		steps int
	}{{"s0", Completed, 2}, {"s1", Completed, 2}} {
		s, err := o.Status(ctx, tc.id)
		if err != nil || s.State != tc.state || len(s.Steps) != tc.steps {
			t.Errorf("%s = %+v, %v; want %s with %d steps", tc.id, s, err, tc.state, tc.steps)
		}
	}
}
