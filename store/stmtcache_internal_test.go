package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// keptCounts is what one connection's statement cache holds and counted.
type keptCounts struct{ kept, prepared, reused int }

// counts reads the statement cache of conn's driver connection.
func counts(t *testing.T, conn *sql.Conn) keptCounts {
	t.Helper()
	var c keptCounts
	if err := conn.Raw(func(dc any) error {
		tc, ok := dc.(*tracedConn)
		if !ok {
			return fmt.Errorf("driver connection %T, want *tracedConn", dc)
		}
		cc, ok := tc.Conn.(*cachingConn)
		if !ok {
			return fmt.Errorf("traced connection wraps %T, want *cachingConn", tc.Conn)
		}
		c = keptCounts{len(cc.stmts), cc.prepared, cc.reused}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return c
}

func openKeptTest(t *testing.T) *Store {
	t.Helper()
	st, err := Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "kept.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.DB().Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := st.DB().Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// sumRows reads every row of rows (one integer column) and returns their sum and count.
func sumRows(t *testing.T, rows *sql.Rows) (sum, n int) {
	t.Helper()
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		sum, n = sum+v, n+1
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sum, n
}

// TestKeptQueries runs queries on the writer's connection (inside a transaction, as
// services do) and on a reader's, and checks through the connection's counters that a
// query's statement is prepared once and kept, and stays correct through what could make
// it go stale or be finalized under its rows.
func TestKeptQueries(t *testing.T) {
	ctx := context.Background()
	const q = `SELECT v FROM kv WHERE v >= ? ORDER BY v`
	for _, tc := range []struct {
		name string
		pool func(*Store) *sql.DB
		run  func(t *testing.T, conn *sql.Conn)
	}{
		{"writer: query in a transaction kept", (*Store).DB, func(t *testing.T, conn *sql.Conn) {
			before := counts(t, conn)
			for range 20 {
				tx, err := conn.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				var v int
				if err := tx.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, "k7").Scan(&v); err != nil || v != 7 {
					t.Fatalf("v = %d, %v", v, err)
				}
				if sum, n := sumRows(t, must(tx.QueryContext(ctx, q, 5))); sum != 5+6+7+8+9 || n != 5 {
					t.Fatalf("sum, n = %d, %d", sum, n)
				}
				if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = v WHERE k = ?`, "k1"); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			after := counts(t, conn)
			// BEGIN and COMMIT go through the driver's transaction, not the cache.
			if p := after.prepared - before.prepared; p != 3 {
				t.Errorf("prepared %d statements, want 3", p)
			}
			if r := after.reused - before.reused; r != 3*19 {
				t.Errorf("reused %d times, want %d", r, 3*19)
			}
		}},
		{"reader: query kept", (*Store).ReadDB, func(t *testing.T, conn *sql.Conn) {
			before := counts(t, conn)
			for range 10 {
				if sum, n := sumRows(t, must(conn.QueryContext(ctx, q, 8))); sum != 17 || n != 2 {
					t.Fatalf("sum, n = %d, %d", sum, n)
				}
			}
			after := counts(t, conn)
			if after.prepared-before.prepared != 1 || after.reused-before.reused != 9 {
				t.Errorf("prepared %d, reused %d; want 1, 9", after.prepared-before.prepared, after.reused-before.reused)
			}
		}},
		{"same query again while its rows are open", (*Store).DB, func(t *testing.T, conn *sql.Conn) {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			outer := must(tx.QueryContext(ctx, q, 0))
			var got []int
			for outer.Next() {
				var v int
				if err := outer.Scan(&v); err != nil {
					t.Fatal(err)
				}
				got = append(got, v)
				// The same statement text, while outer still steps the kept one.
				if sum, n := sumRows(t, must(tx.QueryContext(ctx, q, v))); n != 10-v || sum != (9*10-v*(v-1))/2 {
					t.Fatalf("inner from %d: sum, n = %d, %d", v, sum, n)
				}
				if _, err := tx.ExecContext(ctx, q, v); err != nil { // Exec of it too
					t.Fatal(err)
				}
			}
			if err := outer.Close(); err != nil {
				t.Fatal(err)
			}
			if len(got) != 10 || got[9] != 9 {
				t.Fatalf("outer read %v", got)
			}
			before := counts(t, conn)
			if sum, n := sumRows(t, must(tx.QueryContext(ctx, q, 9))); sum != 9 || n != 1 {
				t.Fatalf("after: sum, n = %d, %d", sum, n)
			}
			if after := counts(t, conn); after.reused != before.reused+1 {
				t.Errorf("the kept statement was not reused once its rows were closed")
			}
		}},
		{"evicted while its rows are open", (*Store).DB, func(t *testing.T, conn *sql.Conn) {
			rows := must(conn.QueryContext(ctx, q, 0))
			if !rows.Next() {
				t.Fatal("no first row")
			}
			for i := range 2 * stmtCacheSize {
				var v int
				if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d + v FROM kv WHERE k = 'k1'`, i)).Scan(&v); err != nil || v != i+1 {
					t.Fatalf("query %d: %d, %v", i, v, err)
				}
			}
			if c := counts(t, conn); c.kept > stmtCacheSize {
				t.Fatalf("%d statements kept, bound %d", c.kept, stmtCacheSize)
			}
			sum, n := sumRows(t, rows) // the rest, then Close: finalizes it if evicted
			if sum != 45 || n != 9 {
				t.Fatalf("rest: sum, n = %d, %d", sum, n)
			}
			if sum, n := sumRows(t, must(conn.QueryContext(ctx, q, 0))); sum != 45 || n != 10 {
				t.Fatalf("again: sum, n = %d, %d", sum, n)
			}
		}},
		{"schema change under kept queries", (*Store).DB, func(t *testing.T, conn *sql.Conn) {
			const all = `SELECT * FROM kv WHERE k = ?`
			cols := func() []string {
				rows := must(conn.QueryContext(ctx, all, "k1"))
				defer rows.Close()
				c, err := rows.Columns()
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			if c := cols(); len(c) != 2 {
				t.Fatalf("columns %v", c)
			}
			if _, err := conn.ExecContext(ctx, `ALTER TABLE kv ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'`); err != nil {
				t.Fatal(err)
			}
			if c := cols(); len(c) != 3 || c[2] != "extra" {
				t.Fatalf("columns after ALTER %v", c)
			}
			// Dropped and made again with other contents: the kept statement reads the new table.
			for _, s := range []string{`DROP TABLE kv`, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`, `INSERT INTO kv VALUES ('z', 100)`} {
				if _, err := conn.ExecContext(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			if sum, n := sumRows(t, must(conn.QueryContext(ctx, q, 0))); sum != 100 || n != 1 {
				t.Fatalf("after recreate: sum, n = %d, %d", sum, n)
			}
		}},
		{"many distinct queries: bounded", (*Store).ReadDB, func(t *testing.T, conn *sql.Conn) {
			for i := range 3 * stmtCacheSize {
				var v int
				if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT v + %d FROM kv WHERE k = 'k2'`, i)).Scan(&v); err != nil || v != i+2 {
					t.Fatalf("query %d: %d, %v", i, v, err)
				}
			}
			if c := counts(t, conn); c.kept != stmtCacheSize {
				t.Fatalf("%d statements kept, want the bound %d", c.kept, stmtCacheSize)
			}
		}},
		{"canceled context, then again", (*Store).ReadDB, func(t *testing.T, conn *sql.Conn) {
			sumRows(t, must(conn.QueryContext(ctx, q, 0)))
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := conn.QueryContext(cctx, q, 0); err == nil {
				t.Fatal("canceled query ran")
			}
			if sum, n := sumRows(t, must(conn.QueryContext(ctx, q, 0))); sum != 45 || n != 10 {
				t.Fatalf("after cancel: sum, n = %d, %d", sum, n)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openKeptTest(t)
			conn, err := tc.pool(st).Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tc.run(t, conn)
		})
	}
}

// TestKeptQueriesConcurrentReaders runs the same and different queries from many
// goroutines on the read pool while the writer changes the rows they read.
func TestKeptQueriesConcurrentReaders(t *testing.T) {
	ctx := context.Background()
	st := openKeptTest(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				var n, sum int
				err := st.ReadDB().QueryRowContext(ctx, `SELECT COUNT(*), SUM(v) FROM kv WHERE v >= ?`, g%3).Scan(&n, &sum)
				if err == nil && n < 10-g%3 {
					err = fmt.Errorf("goroutine %d, round %d: %d rows", g, i, n)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 100 {
			if _, err := st.DB().ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("w", i), 1000+i); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestStmtCtx: on the writer, a statement runs without its context's cancellation (the
// driver would watch it from a goroutine per statement) but fails before it starts once
// the context has ended; readers keep the context as it is.
func TestStmtCtx(t *testing.T) {
	live, cancelLive := context.WithCancel(context.Background())
	defer cancelLive()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name       string
		writer     bool
		ctx        context.Context
		err        error
		cancelable bool // the context the statement runs with can end
	}{
		{"writer, background", true, context.Background(), nil, false},
		{"writer, cancelable", true, live, nil, false},
		{"writer, canceled", true, ended, context.Canceled, false},
		{"reader, cancelable", false, live, nil, true},
		{"reader, canceled", false, ended, nil, true}, // the driver fails it
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cachingConn{writer: tc.writer}
			ctx, err := c.stmtCtx(tc.ctx)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got := ctx.Done() != nil; got != tc.cancelable {
				t.Fatalf("cancelable = %v, want %v", got, tc.cancelable)
			}
		})
	}
	// On a real writer, a statement with an ended context fails and leaves nothing.
	st := openKeptTest(t)
	if _, err := st.DB().ExecContext(context.Background(), `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	err := st.InTx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ended, `INSERT INTO t (v) VALUES (1)`)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("InTx = %v, want context.Canceled", err)
	}
	if err := st.InTx(live, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(live, `INSERT INTO t (v) VALUES (2)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var sum int
	if err := st.ReadDB().QueryRow(`SELECT COALESCE(SUM(v), 0) FROM t`).Scan(&sum); err != nil || sum != 2 {
		t.Fatalf("sum = %d, %v; want 2", sum, err)
	}
}
