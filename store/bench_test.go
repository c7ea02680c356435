package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
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

// smallTxSchema is what a stateful service's commit touches: a row keyed by a text id
// (WITHOUT ROWID, as the shop's orders), an outbox row numbered by AUTOINCREMENT, and an
// idempotency key.
var smallTxSchema = []string{
	`CREATE TABLE orders (id TEXT PRIMARY KEY, customer TEXT NOT NULL, status TEXT NOT NULL, total_cents INTEGER NOT NULL, items TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID`,
	`CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, subject TEXT NOT NULL, key TEXT NOT NULL, payload BLOB, headers TEXT NOT NULL, created_at INTEGER NOT NULL, sent_at INTEGER)`,
	`CREATE TABLE idem (key TEXT PRIMARY KEY, created_at INTEGER NOT NULL) WITHOUT ROWID`,
}

// The three inserts of one small transaction.
const (
	smallInsOrder  = `INSERT INTO orders (id, customer, status, total_cents, items, created_at) VALUES (?, ?, 'pending', ?, ?, ?)`
	smallInsOutbox = `INSERT INTO outbox (id, subject, key, payload, headers, created_at) VALUES (?, 'orders.placed', ?, ?, '', ?)`
	smallInsIdem   = `INSERT INTO idem (key, created_at) VALUES (?, ?)`
)

// BenchmarkSmallTx commits one small transaction (three inserts: an order, its outbox
// event, an idempotency key) per operation through the Store's group-commit writer
// (store), and, beside it on the same PRAGMAs (WAL, synchronous=NORMAL, busy timeout,
// foreign keys, BEGIN IMMEDIATE), through modernc.org/sqlite's database/sql driver alone
// with prepared statements on one connection (raw): the same statements, the same
// durability; and through two Stores on one file, in turn (replicas), as the two replicas
// of the shop's notifications share theirs. serial: one caller at a time; parallel: 16 callers at once, which the Store
// groups into shared commits and the raw pool runs one transaction at a time.
func BenchmarkSmallTx(b *testing.B) {
	payload := make([]byte, 300)
	items := `[{"productId":"sku-1","quantity":1}]`
	for _, par := range []bool{false, true} {
		mode := "serial"
		if par {
			mode = "parallel"
		}
		for _, impl := range []string{"raw", "store", "replicas"} {
			b.Run(mode+"/"+impl, func(b *testing.B) {
				ctx := context.Background()
				path := filepath.Join(b.TempDir(), "b.db")
				var commit func(n int64) error
				switch impl {
				case "store", "replicas":
					// replicas: two Stores on one file, as two replicas of a service share
					// it, taking the transactions in turn; each one's writer finds the
					// file changed by the other at its next transaction.
					var sts []*store.Store
					for range map[string]int{"store": 1, "replicas": 2}[impl] {
						st, err := store.Open(ctx, "sqlite:"+path)
						if err != nil {
							b.Fatal(err)
						}
						defer st.Close()
						sts = append(sts, st)
					}
					for _, q := range smallTxSchema {
						if _, err := sts[0].DB().Exec(q); err != nil {
							b.Fatal(err)
						}
					}
					commit = func(n int64) error {
						st := sts[n%int64(len(sts))]
						return st.InTx(ctx, func(tx *sql.Tx) error {
							id := fmt.Sprint("o-", n)
							if _, err := tx.ExecContext(ctx, smallInsOrder, id, "c-1", 1999, items, n); err != nil {
								return err
							}
							if _, err := tx.ExecContext(ctx, smallInsOutbox, id, id, payload, n); err != nil {
								return err
							}
							_, err := tx.ExecContext(ctx, smallInsIdem, id, n)
							return err
						})
					}
				case "raw":
					db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate")
					if err != nil {
						b.Fatal(err)
					}
					defer db.Close()
					db.SetMaxOpenConns(1)
					db.SetMaxIdleConns(1)
					for _, q := range smallTxSchema {
						if _, err := db.Exec(q); err != nil {
							b.Fatal(err)
						}
					}
					var stmts [3]*sql.Stmt
					for i, q := range []string{smallInsOrder, smallInsOutbox, smallInsIdem} {
						if stmts[i], err = db.Prepare(q); err != nil {
							b.Fatal(err)
						}
						defer stmts[i].Close()
					}
					commit = func(n int64) error {
						tx, err := db.BeginTx(ctx, nil)
						if err != nil {
							return err
						}
						defer tx.Rollback()
						id := fmt.Sprint("o-", n)
						if _, err := tx.StmtContext(ctx, stmts[0]).ExecContext(ctx, id, "c-1", 1999, items, n); err != nil {
							return err
						}
						if _, err := tx.StmtContext(ctx, stmts[1]).ExecContext(ctx, id, id, payload, n); err != nil {
							return err
						}
						if _, err := tx.StmtContext(ctx, stmts[2]).ExecContext(ctx, id, n); err != nil {
							return err
						}
						return tx.Commit()
					}
				}
				var seq atomic.Int64
				b.ReportAllocs()
				start := cpumeter.Process()
				defer func() { reportCPU(b, start) }()
				if par {
					b.SetParallelism(8) // 16 callers on 2 cores
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := commit(seq.Add(1)); err != nil {
								b.Error(err)
								return
							}
						}
					})
					return
				}
				for b.Loop() {
					if err := commit(seq.Add(1)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
