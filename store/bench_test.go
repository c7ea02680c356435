package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/svckit/svckit/store"
)

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
