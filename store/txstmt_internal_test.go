package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
)

// txStmts returns the texts of the statements conn keeps to begin and end transactions.
func txStmts(t *testing.T, conn *sql.Conn) []string {
	t.Helper()
	var qs []string
	if err := conn.Raw(func(dc any) error {
		cc := dc.(*tracedConn).Conn.(*cachingConn)
		for q := range cc.txStmts {
			qs = append(qs, q)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(qs)
	return qs
}

// TestKeptTransactionStatements checks that a connection begins and ends transactions
// with statements it keeps (BEGIN IMMEDIATE on the writer, BEGIN on a reader), whatever
// the number of transactions, and that a COMMIT that fails leaves the connection outside
// any transaction, the transaction rolled back.
func TestKeptTransactionStatements(t *testing.T) {
	ctx := context.Background()
	st := openKeptTest(t)
	for i := range 20 {
		if err := st.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE kv SET v = ? WHERE k = 'k1'`, i)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := st.InTxOptions(ctx, &sql.TxOptions{ReadOnly: true}, func(tx *sql.Tx) error {
			var v int
			return tx.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = 'k1'`).Scan(&v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	rollback := errors.New("roll back")
	if err := st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE kv SET v = -1 WHERE k = 'k1'`); err != nil {
			return err
		}
		return rollback
	}); !errors.Is(err, rollback) {
		t.Fatalf("InTx = %v, want the function's error", err)
	}
	var v int
	if err := st.ReadDB().QueryRowContext(ctx, `SELECT v FROM kv WHERE k = 'k1'`).Scan(&v); err != nil || v != 19 {
		t.Fatalf("k1 = %d, %v; want 19 (the last committed value)", v, err)
	}
	for _, tc := range []struct {
		name string
		db   *sql.DB
		want []string
	}{
		{"writer", st.DB(), []string{"BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"}},
		{"reader", st.ReadDB(), []string{"BEGIN", "COMMIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for range 3 {
				tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: tc.name == "reader"})
				if err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if got := txStmts(t, conn); !slices.Equal(got, tc.want) {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
		})
	}

	// A deferred foreign key that is violated at COMMIT: SQLite leaves the transaction
	// open, and Commit must end it.
	for _, q := range []string{
		`CREATE TABLE parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`,
	} {
		if _, err := st.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO child (id, parent) VALUES (1, 42)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("Commit of a child without its parent succeeded")
	}
	if err := st.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO parent (id) VALUES (7)`)
		return err
	}); err != nil {
		t.Fatalf("a transaction after the failed COMMIT: %v", err)
	}
	var children, parents int
	if err := st.DB().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM child), (SELECT COUNT(*) FROM parent)`).Scan(&children, &parents); err != nil {
		t.Fatal(err)
	}
	if children != 0 || parents != 1 {
		t.Errorf("%d children, %d parents after the failed COMMIT and one more transaction; want 0 and 1", children, parents)
	}
}

func TestBeginSQL(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"file:a.db?_pragma=x&_txlock=immediate", "BEGIN IMMEDIATE"},
		{"file:a.db?_txlock=EXCLUSIVE&_pragma=x", "BEGIN EXCLUSIVE"},
		{"file:a.db?_txlock=deferred", "BEGIN DEFERRED"},
		{"file:a.db?_txlock=bogus", "BEGIN"},
		{"file:a.db?_pragma=query_only(1)", "BEGIN"},
		{"file:a.db", "BEGIN"},
	} {
		if got := beginSQL(tc.dsn); got != tc.want {
			t.Errorf("beginSQL(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
}
