package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing/fstest"

	"github.com/svckit/svckit/store"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "store")
	defer os.RemoveAll(dir)

	// sqlite:PATH or postgres://user@host/db — one DSN per service.
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "orders.db"))
	if err != nil {
		panic(err)
	}
	defer st.Close()

	// Usually an embed.FS with migrations/001_init.sql, 002_….sql, …
	migrations := fstest.MapFS{
		"001_orders.sql": {Data: []byte(`CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER NOT NULL);`)},
	}
	if err := st.Migrate(ctx, migrations); err != nil {
		panic(err)
	}

	err = st.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, st.Rebind("INSERT INTO orders (id, amount) VALUES (?, ?)"), "o-1", 42)
		return err
	})
	if err != nil {
		panic(err)
	}
	var amount int
	_ = st.ReadDB().QueryRowContext(ctx, st.Rebind("SELECT amount FROM orders WHERE id = ?"), "o-1").Scan(&amount)
	fmt.Println(st.Dialect(), amount)
	// Output: sqlite 42
}
