package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/store"
)

// reportCPU reports the process's CPU time per operation since start (cpu-µs/op), which
// on a shared machine is steadier than ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpumeter.Process()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkInTx commits one-row transactions on SQLite, one caller at a time and from
// many goroutines at once (where group commit shares commits).
func BenchmarkInTx(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel bool
	}{{"serial", false}, {"parallel", true}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			st, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "b.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			if _, err := st.DB().Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)"); err != nil {
				b.Fatal(err)
			}
			ins, err := st.DB().Prepare("INSERT INTO t (v) VALUES (?)")
			if err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 200)
			tx := func() {
				if err := st.InTx(ctx, func(tx *sql.Tx) error {
					_, err := tx.StmtContext(ctx, ins).ExecContext(ctx, body)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			start := cpumeter.Process()
			defer func() { reportCPU(b, start) }()
			if bc.parallel {
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						tx()
					}
				})
				return
			}
			for b.Loop() {
				tx()
			}
		})
	}
}

// BenchmarkQueryInTx runs, in one write transaction, what a service's handler does
// (catalog, payments): a SELECT of one row, then an UPDATE of it; and a SELECT of one row
// on the read pool. The SQL text is the same at each call, so a connection that keeps its
// statements prepared parses it once.
func BenchmarkQueryInTx(b *testing.B) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB().Exec(`CREATE TABLE stock (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price INTEGER NOT NULL, qty INTEGER NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if _, err := st.DB().Exec(`INSERT INTO stock VALUES (?, ?, ?, ?)`, fmt.Sprint("sku-", i), "a product", 100+i, 1<<40); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("write-tx", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpumeter.Process())
		i := 0
		for b.Loop() {
			i++
			sku := fmt.Sprint("sku-", i%100)
			if err := st.InTx(ctx, func(tx *sql.Tx) error {
				var name string
				var price, qty int64
				if err := tx.QueryRowContext(ctx, `SELECT name, price, qty FROM stock WHERE sku = ?`, sku).Scan(&name, &price, &qty); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, `UPDATE stock SET qty = ? WHERE sku = ?`, qty-1, sku)
				return err
			}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b, cpumeter.Process())
		i := 0
		for b.Loop() {
			i++
			var name string
			var price, qty int64
			if err := st.ReadDB().QueryRowContext(ctx, `SELECT name, price, qty FROM stock WHERE sku = ?`, fmt.Sprint("sku-", i%100)).Scan(&name, &price, &qty); err != nil {
				b.Fatal(err)
			}
		}
	})
}
