package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/svckit/svckit/store"
)

func TestStatement(t *testing.T) {
	for _, tc := range []struct {
		query, kind, table string
	}{
		{"SELECT id FROM orders WHERE id = ?", "SELECT", "orders"},
		{"select count(*) from outbox where sent_at is null", "SELECT", "outbox"},
		{"  \n-- a comment\n/* another */ INSERT INTO outbox (id) VALUES ('x FROM y')", "INSERT", "outbox"},
		{"UPDATE outbox_lease SET expires_at = ? WHERE name = ?", "UPDATE", "outbox_lease"},
		{"DELETE FROM \"order items\" WHERE id = 1", "DELETE", ""},
		{"DELETE FROM \"orders\" WHERE id = 1", "DELETE", "orders"},
		{"SELECT * FROM public.orders", "SELECT", "public.orders"},
		{"WITH x AS (SELECT a FROM b) SELECT * FROM c", "WITH", "c"},
		{"SELECT (SELECT 1 FROM inner_t) AS n, from_date FROM outer_t", "SELECT", "outer_t"},
		{"SELECT 'it''s FROM secret' FROM t", "SELECT", "t"},
		{"SELECT 'unterminated FROM secret", "SELECT", ""},
		{"SELECT 1", "SELECT", ""},
		{"SELECT * FROM (SELECT 1)", "SELECT", ""},
		{"INSERT INTO t SELECT * FROM u", "INSERT", "t"},
		{"CREATE TABLE t (id INTEGER)", "CREATE", ""},
		{"BEGIN", "BEGIN", ""},
		{"", "SQL", ""},
		{"-- only a comment", "SQL", ""},
		{"'secret value'", "SQL", ""},
		{"SELECT1 FROM t", "SQL", ""},
		{"SELECT * FROM " + strings.Repeat("a", 100), "SELECT", ""},
	} {
		kind, table := store.Statement(tc.query)
		if kind != tc.kind || table != tc.table {
			t.Errorf("Statement(%q) = %q, %q; want %q, %q", tc.query, kind, table, tc.kind, tc.table)
		}
	}
}

// TestTracing runs statements on a real SQLite file under a recording span and checks the
// spans they make: one per statement, children of the caller's span, with the statement's
// kind and table and never its parameters.
func TestTracing(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testTracing(t, st, "sqlite")
}

// testTracing is TestTracing on the store st of the database system sys.
func testTracing(t *testing.T, st *store.Store, sys string) {
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE orders (id TEXT PRIMARY KEY, card TEXT)"); err != nil {
		t.Fatal(err)
	}
	const secret = "4111-1111-1111-1111"

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(ctx)

	for _, tc := range []struct {
		name    string
		run     func(ctx context.Context) error
		want    []string // span names
		op      string
		failing bool
	}{
		{"exec", func(ctx context.Context) error {
			_, err := st.DB().ExecContext(ctx, st.Rebind("INSERT INTO orders (id, card) VALUES (?, ?)"), "o1", secret)
			return err
		}, []string{"INSERT orders"}, "INSERT", false},
		{"query on the read pool", func(ctx context.Context) error {
			var card string
			return st.ReadDB().QueryRowContext(ctx, st.Rebind("SELECT card FROM orders WHERE id = ?"), "o1").Scan(&card)
		}, []string{"SELECT orders"}, "SELECT", false},
		{"transaction", func(ctx context.Context) error {
			return st.InTx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, st.Rebind("UPDATE orders SET card = ? WHERE id = ?"), secret, "o1"); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, st.Rebind("DELETE FROM orders WHERE id = ?"), "o2")
				return err
			})
		}, []string{"UPDATE orders", "DELETE orders"}, "", false},
		{"prepared", func(ctx context.Context) error {
			s, err := st.DB().PrepareContext(ctx, st.Rebind("INSERT INTO orders (id, card) VALUES (?, ?)"))
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.ExecContext(ctx, "o3", secret)
			return err
		}, []string{"INSERT orders"}, "INSERT", false},
		{"failing", func(ctx context.Context) error {
			_, err := st.DB().ExecContext(ctx, st.Rebind("INSERT INTO orders (id, card) VALUES (?, ?)"), "o1", secret)
			return err
		}, []string{"INSERT orders"}, "INSERT", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, parent := tp.Tracer("test").Start(ctx, "handler")
			err := tc.run(ctx)
			parent.End()
			if (err != nil) != tc.failing {
				t.Fatalf("err = %v, failing %v", err, tc.failing)
			}
			var got []sdktrace.ReadOnlySpan
			for _, s := range rec.Ended() {
				if s.Parent().SpanID() == parent.SpanContext().SpanID() {
					got = append(got, s)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d spans under the handler, want %v", len(got), tc.want)
			}
			for i, s := range got {
				if s.Name() != tc.want[i] {
					t.Errorf("span %d = %q, want %q", i, s.Name(), tc.want[i])
				}
				if s.SpanKind() != trace.SpanKindClient {
					t.Errorf("span %q kind %v", s.Name(), s.SpanKind())
				}
				if s.InstrumentationScope().Name != store.TraceScope {
					t.Errorf("span %q scope %q", s.Name(), s.InstrumentationScope().Name)
				}
				attrs := map[attribute.Key]string{}
				for _, a := range s.Attributes() {
					attrs[a.Key] = a.Value.Emit()
					if strings.Contains(a.Value.Emit(), secret) || strings.Contains(a.Value.Emit(), "?") || strings.Contains(a.Value.Emit(), "$1") {
						t.Errorf("span %q attribute %s = %q: a parameter or the statement", s.Name(), a.Key, a.Value.Emit())
					}
				}
				if attrs["db.system.name"] != sys || attrs["db.system"] != sys || attrs["db.collection.name"] != "orders" {
					t.Errorf("span %q attributes %v", s.Name(), attrs)
				}
				if tc.op != "" && attrs["db.operation.name"] != tc.op {
					t.Errorf("span %q db.operation.name %q, want %q", s.Name(), attrs["db.operation.name"], tc.op)
				}
				if failed := s.Status().Code == codes.Error; failed != tc.failing {
					t.Errorf("span %q status %v, want failing %v", s.Name(), s.Status(), tc.failing)
				}
				for _, e := range s.Events() {
					for _, a := range e.Attributes {
						if strings.Contains(a.Value.Emit(), secret) {
							t.Errorf("span %q event %q has the parameter", s.Name(), e.Name)
						}
					}
				}
			}
		})
	}

	// Without a recording span in the context, nothing is traced.
	before := len(rec.Ended())
	if _, err := st.DB().ExecContext(ctx, st.Rebind("INSERT INTO orders (id, card) VALUES (?, ?)"), "o9", secret); err != nil {
		t.Fatal(err)
	}
	nctx, span := noop.NewTracerProvider().Tracer("t").Start(ctx, "noop")
	if _, err := st.DB().ExecContext(nctx, st.Rebind("INSERT INTO orders (id, card) VALUES (?, ?)"), "o10", secret); err != nil {
		t.Fatal(err)
	}
	span.End()
	if n := len(rec.Ended()) - before; n != 0 {
		t.Errorf("%d spans without a recording parent", n)
	}
}

// BenchmarkTracing measures a point query through the Store's traced pool when the
// context carries no span (off), a non-recording span (noop) and a recording span of an SDK
// provider without exporter (recording), beside the same query on a bare database/sql pool
// of the same file: the differences are what the tracing costs.
func BenchmarkTracing(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "b.db")
	st, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB().Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		b.Fatal(err)
	}
	if _, err := st.DB().Exec("INSERT INTO t (id, v) VALUES (1, 'x')"); err != nil {
		b.Fatal(err)
	}
	bare, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	nctx, span := noop.NewTracerProvider().Tracer("b").Start(ctx, "noop")
	defer span.End()
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(ctx)
	rctx, rspan := tp.Tracer("b").Start(ctx, "request")
	defer rspan.End()
	for _, bc := range []struct {
		name string
		db   *sql.DB
		ctx  context.Context
	}{
		{"bare", bare, ctx},
		{"store-off", st.ReadDB(), ctx},
		{"store-noop", st.ReadDB(), nctx},
		{"store-recording", st.ReadDB(), rctx},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var v string
			for b.Loop() {
				if err := bc.db.QueryRowContext(bc.ctx, "SELECT v FROM t WHERE id = ?", 1).Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
