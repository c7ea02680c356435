package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
)

// TestSQLiteKeptStatements runs Exec statements on the writer, whose connection keeps
// them prepared, through what could make a kept statement go stale or leak state: a
// schema change under it, a failed execution, a rolled-back transaction, more distinct
// statements than it keeps, and a script of several statements.
func TestSQLiteKeptStatements(t *testing.T) {
	ctx := context.Background()
	const insert = `INSERT INTO kv (k, v) VALUES (?, ?)`
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, db *sql.DB)
		want int // rows in kv afterwards
	}{
		{"same statement, other arguments", func(t *testing.T, db *sql.DB) {
			for i := range 50 {
				mustExec(t, db, insert, fmt.Sprint(i), i)
			}
		}, 50},
		{"schema change under a kept statement", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, insert, "a", 1)
			mustExec(t, db, `ALTER TABLE kv ADD COLUMN extra TEXT NOT NULL DEFAULT 'x'`)
			mustExec(t, db, insert, "b", 2)
			var extra string
			if err := db.QueryRow(`SELECT extra FROM kv WHERE k = 'b'`).Scan(&extra); err != nil || extra != "x" {
				t.Fatalf("extra = %q, %v", extra, err)
			}
			mustExec(t, db, `DROP TABLE kv`)
			mustExec(t, db, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
			mustExec(t, db, insert, "c", 3)
		}, 1},
		{"failed execution, then again", func(t *testing.T, db *sql.DB) {
			mustExec(t, db, insert, "a", 1)
			if _, err := db.Exec(insert, "a", 2); err == nil {
				t.Fatal("duplicate key accepted")
			}
			if _, err := db.Exec(insert, "b", nil); err == nil {
				t.Fatal("NULL accepted")
			}
			mustExec(t, db, insert, "b", 2)
		}, 2},
		{"rolled-back transaction", func(t *testing.T, db *sql.DB) {
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(insert, "a", 1); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			mustExec(t, db, insert, "b", 2)
		}, 1},
		{"more statements than kept", func(t *testing.T, db *sql.DB) {
			for i := range 300 { // each its own text, so each its own statement
				mustExec(t, db, fmt.Sprintf(`INSERT INTO kv (k, v) VALUES ('k%d', %d)`, i, i))
			}
			for i := range 300 {
				mustExec(t, db, fmt.Sprintf(`UPDATE kv SET v = v + 1 WHERE k = 'k%d'`, i))
			}
			var sum int
			if err := db.QueryRow(`SELECT SUM(v) FROM kv`).Scan(&sum); err != nil || sum != 300*299/2+300 {
				t.Fatalf("sum = %d, %v", sum, err)
			}
		}, 300},
		{"script of several statements", func(t *testing.T, db *sql.DB) {
			for i := range 3 {
				mustExec(t, db, `INSERT INTO kv (k, v) VALUES ('s' || ?, 1); UPDATE kv SET v = v + 1;`, i)
			}
		}, 3},
		{"canceled context", func(t *testing.T, db *sql.DB) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := db.ExecContext(cctx, insert, "a", 1); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			mustExec(t, db, insert, "a", 1)
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sqliteOpener(t)
			db := s.DB()
			mustExec(t, db, `CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
			tc.run(t, db)
			if n := count(t, s, `SELECT COUNT(*) FROM kv`); n != tc.want {
				t.Fatalf("%d rows, want %d", n, tc.want)
			}
		})
	}
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
