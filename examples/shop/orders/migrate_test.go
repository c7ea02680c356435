package orders_test

import (
	"context"
	"embed"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/notifications"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/store"
)

// TestClusteredMigrationsKeepRows migrates each shop store to the schema before its
// tables became WITHOUT ROWID, writes rows, migrates to the end and checks that the rows
// are all there, that the tables are WITHOUT ROWID now and that the keys and foreign keys
// still hold.
func TestClusteredMigrationsKeepRows(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		fsys   embed.FS
		before int      // the last version of the old schema
		rows   []string // statements writing rows under the old schema
		counts map[string]int
		refuse []string // statements the keys must refuse after the migration
	}{
		{"orders", orders.Migrations, 1, []string{
			`INSERT INTO orders (id, customer, status, items, created_at, updated_at) VALUES ('ord_1', 'ada', 'pending', '[]', 1, 1), ('ord_2', 'bob', 'confirmed', '[]', 2, 2)`,
		}, map[string]int{"orders": 2}, []string{
			`INSERT INTO orders (id, customer, status, items, created_at, updated_at) VALUES ('ord_1', 'x', 'pending', '[]', 3, 3)`,
		}},
		{"catalog", catalog.Migrations, 1, []string{
			`INSERT INTO reservations (order_id, status, total_cents, created_at) VALUES ('ord_1', 'reserved', 2490, 1), ('ord_2', 'released', 0, 2)`,
			`INSERT INTO reservation_items (order_id, product_id, quantity) VALUES ('ord_1', 'sku-espresso', 1)`,
		}, map[string]int{"reservations": 2, "reservation_items": 1, "products": 5}, []string{
			`INSERT INTO reservations (order_id, status, total_cents, created_at) VALUES ('ord_1', 'reserved', 1, 3)`,
			`INSERT INTO reservation_items (order_id, product_id, quantity) VALUES ('ord_9', 'sku-espresso', 1)`, // no such reservation
			`INSERT INTO reservation_items (order_id, product_id, quantity) VALUES ('ord_2', 'nope', 1)`,         // no such product
		}},
		{"payments", payments.Migrations, 2, []string{
			`INSERT INTO payments (id, order_id, customer, amount_cents, status, created_at, updated_at) VALUES ('pay_1', 'ord_1', 'ada', 2490, 'charged', 1, 1), ('pay_2', 'ord_2', 'bob', 0, 'voided', 2, 2)`,
		}, map[string]int{"payments": 2}, []string{
			`INSERT INTO payments (id, order_id, customer, amount_cents, status, created_at, updated_at) VALUES ('pay_3', 'ord_1', 'ada', 1, 'charged', 3, 3)`,
			`INSERT INTO payments (id, order_id, customer, amount_cents, status, created_at, updated_at) VALUES ('pay_4', 'ord_4', 'ada', -1, 'charged', 3, 3)`,
		}},
		{"notifications", notifications.Migrations, 1, []string{
			`INSERT INTO notifications (message_id, order_id, customer, kind, text, created_at) VALUES ('m1', 'ord_1', 'ada', 'OrderPlaced', 'a', 1), ('m2', 'ord_1', 'ada', 'OrderConfirmed', 'b', 2)`,
		}, map[string]int{"notifications": 2}, []string{
			`INSERT INTO notifications (message_id, order_id, customer, kind, text, created_at) VALUES ('m1', 'ord_2', 'bob', 'OrderPlaced', 'c', 3)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), tc.name+".db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			old := fstest.MapFS{}
			entries, err := fs.ReadDir(tc.fsys, "migrations")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				var v int
				for _, c := range e.Name() {
					if c < '0' || c > '9' {
						break
					}
					v = v*10 + int(c-'0')
				}
				if v <= tc.before {
					data, err := fs.ReadFile(tc.fsys, "migrations/"+e.Name())
					if err != nil {
						t.Fatal(err)
					}
					old["migrations/"+e.Name()] = &fstest.MapFile{Data: data}
				}
			}
			if err := st.Migrate(ctx, old, store.WithDir("migrations")); err != nil {
				t.Fatal(err)
			}
			for _, q := range tc.rows {
				if _, err := st.DB().ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if err := st.Migrate(ctx, tc.fsys, store.WithDir("migrations")); err != nil {
				t.Fatal(err)
			}
			for table, want := range tc.counts {
				var n int
				if err := st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil || n != want {
					t.Errorf("%s: %d rows, %v; want %d", table, n, err, want)
				}
				var sql string
				if err := st.DB().QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&sql); err != nil {
					t.Fatal(err)
				}
				if table != "products" && !strings.Contains(sql, "WITHOUT ROWID") {
					t.Errorf("%s is not WITHOUT ROWID: %s", table, sql)
				}
			}
			for _, q := range tc.refuse {
				if _, err := st.DB().ExecContext(ctx, q); err == nil {
					t.Errorf("%s: accepted, want refused", q)
				}
			}
		})
	}
}
