package saga_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// BenchmarkSaga3Steps runs 3-step sagas on a SQLite file, many at once, and reports
// sagas/s and the process's CPU time per saga (cpu-µs/saga, user + system from
// getrusage), which on a shared machine is steadier than sagas/s. Two steps write to the
// store inside their checkpoint transaction, one is a plain action.
func BenchmarkSaga3Steps(b *testing.B) { benchSaga(b, sqliteStore(b)) }

func benchSaga(b *testing.B, st *store.Store) {
	ctx := context.Background()
	if _, err := st.DB().Exec(`CREATE TABLE reservations (id TEXT PRIMARY KEY, n INTEGER)`); err != nil {
		b.Fatal(err)
	}
	o := newOrchestrator(b, st)
	def := saga.Define("bench",
		saga.Step[counter]{Name: "reserve", ActionTx: func(ctx context.Context, tx *sql.Tx, c *counter) error {
			info, _ := saga.Info(ctx)
			_, err := tx.ExecContext(ctx, st.Rebind(`INSERT INTO reservations (id, n) VALUES (?, 1)`), info.SagaID)
			return err
		}},
		saga.Step[counter]{Name: "charge", Action: func(ctx context.Context, c *counter) error {
			c.Visited = append(c.Visited, "charged")
			return nil
		}},
		saga.Step[counter]{Name: "ship", ActionTx: func(ctx context.Context, tx *sql.Tx, c *counter) error {
			info, _ := saga.Info(ctx)
			_, err := tx.ExecContext(ctx, st.Rebind(`UPDATE reservations SET n = 2 WHERE id = ?`), info.SagaID)
			return err
		}},
	)
	b.ReportAllocs()
	b.SetParallelism(32)
	start, cpu := time.Now(), cpumeter.Process()
	var mu sync.Mutex
	var failed int
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id, err := saga.Start(ctx, o, def, counter{})
			if err == nil {
				var s saga.Status
				if s, err = o.Wait(ctx, id); err == nil && s.State != saga.Completed {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sagas/s")
	b.ReportMetric(float64((cpumeter.Process()-cpu).Microseconds())/float64(b.N), "cpu-µs/saga")
	if failed > 0 {
		b.Fatalf("%d sagas did not complete", failed)
	}
}
