package catalog_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

func newCatalog(t *testing.T) (*catalog.Service, *outbox.Outbox) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx, catalog.Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	return catalog.New(st, ob, 5), ob
}

func stock(t *testing.T, c *catalog.Service, id string) int64 {
	t.Helper()
	p, err := c.GetProduct(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Stock
}

func TestReserveAndRelease(t *testing.T) {
	ctx := context.Background()
	c, ob := newCatalog(t)
	items := []catalog.Item{{ProductID: "sku-limited", Quantity: 3}, {ProductID: "sku-filter", Quantity: 2}, {ProductID: "sku-limited", Quantity: 3}}
	r, err := c.Reserve(ctx, "o1", items)
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalCents != 6*1900+2*450 || len(r.Items) != 2 {
		t.Fatalf("reservation %+v", r)
	}
	if got := stock(t, c, "sku-limited"); got != 4 {
		t.Fatalf("stock = %d, want 4", got)
	}
	// Idempotent: the same order takes nothing more.
	again, err := c.Reserve(ctx, "o1", items)
	if err != nil || again.TotalCents != r.TotalCents || stock(t, c, "sku-limited") != 4 {
		t.Fatalf("second reserve: %+v %v, stock %d", again, err, stock(t, c, "sku-limited"))
	}
	// 10 → 4 crossed the threshold of 5: one StockLow event in the outbox.
	if n, err := ob.Pending(ctx); err != nil || n != 1 {
		t.Fatalf("pending events = %d, %v; want 1", n, err)
	}
	if err := c.Release(ctx, "o1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, "o1"); err != nil {
		t.Fatal(err)
	}
	if got := stock(t, c, "sku-limited"); got != 10 {
		t.Fatalf("stock after release = %d, want 10", got)
	}
	// A release that came first makes the late reservation fail.
	if err := c.Release(ctx, "o2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reserve(ctx, "o2", items); svcerr.KindOf(err) != svcerr.FailedPrecondition {
		t.Fatalf("late reserve = %v, want failed_precondition", err)
	}
}

// TestReserveAgainAfterStockRanOut: a Reserve made again answers the order's
// reservation (or refuses its release) also when the stock it took has run out since.
func TestReserveAgainAfterStockRanOut(t *testing.T) {
	ctx := context.Background()
	all := []catalog.Item{{ProductID: "sku-limited", Quantity: 10}}
	for _, tc := range []struct {
		name, order string
		release     bool
		refused     bool // with FailedPrecondition, else answered the reservation
	}{
		{"reserved", "o1", false, false},
		{"released", "o2", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCatalog(t)
			first, err := c.Reserve(ctx, tc.order, all)
			if err != nil {
				t.Fatal(err)
			}
			if tc.release {
				if err := c.Release(ctx, tc.order); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Reserve(ctx, "other", all); err != nil { // the stock runs out again
					t.Fatal(err)
				}
			}
			if got := stock(t, c, "sku-limited"); got != 0 {
				t.Fatalf("stock = %d, want 0", got)
			}
			again, err := c.Reserve(ctx, tc.order, all)
			if tc.refused {
				if svcerr.KindOf(err) != svcerr.FailedPrecondition {
					t.Fatalf("Reserve again = %+v, %v; want failed_precondition", again, err)
				}
				return
			}
			if err != nil || again.TotalCents != first.TotalCents || len(again.Items) != 1 || again.Items[0] != all[0] {
				t.Fatalf("Reserve again = %+v, %v; want %+v", again, err, first)
			}
		})
	}
}

func TestReserveErrors(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	tests := []struct {
		name  string
		order string
		items []catalog.Item
		kind  svcerr.Kind
	}{
		{"no order", "", []catalog.Item{{ProductID: "sku-filter", Quantity: 1}}, svcerr.InvalidArgument},
		{"no items", "o", nil, svcerr.InvalidArgument},
		{"zero quantity", "o", []catalog.Item{{ProductID: "sku-filter", Quantity: 0}}, svcerr.InvalidArgument},
		{"unknown product", "o", []catalog.Item{{ProductID: "nope", Quantity: 1}}, svcerr.NotFound},
		{"not enough stock", "o", []catalog.Item{{ProductID: "sku-limited", Quantity: 11}}, svcerr.FailedPrecondition},
		// The first product is taken before the second fails: the transaction gives it back.
		{"unknown second product", "o", []catalog.Item{{ProductID: "sku-limited", Quantity: 1}, {ProductID: "zzz", Quantity: 1}}, svcerr.NotFound},
		{"not enough of the second", "o", []catalog.Item{{ProductID: "sku-filter", Quantity: 1}, {ProductID: "sku-limited", Quantity: 11}}, svcerr.FailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Reserve(ctx, tc.order, tc.items); svcerr.KindOf(err) != tc.kind {
				t.Fatalf("err = %v, want %s", err, tc.kind)
			}
		})
	}
	if got := stock(t, c, "sku-limited"); got != 10 {
		t.Fatalf("a failed reservation changed stock: %d", got)
	}
	if got := stock(t, c, "sku-filter"); got != 1000000 {
		t.Fatalf("a failed reservation changed stock: %d", got)
	}
	_, err := c.Reserve(ctx, "o", []catalog.Item{{ProductID: "sku-limited", Quantity: 11}})
	if want := "not enough stock of sku-limited: 10 left, 11 wanted"; svcerr.From(err).Message != want {
		t.Fatalf("err = %v, want the message %q", err, want)
	}
	// The order reserves once its items are there: the failures left no reservation.
	if r, err := c.Reserve(ctx, "o", []catalog.Item{{ProductID: "sku-limited", Quantity: 1}}); err != nil || r.TotalCents != 1900 {
		t.Fatalf("reserve after failures = %+v, %v", r, err)
	}
}

// TestNoOversell reserves the limited product from many goroutines: exactly 10 units
// are sold, never more.
func TestNoOversell(t *testing.T) {
	ctx := context.Background()
	c, _ := newCatalog(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := c.Reserve(ctx, "order-"+string(rune('a'+i%26))+string(rune('a'+i/26)), []catalog.Item{{ProductID: "sku-limited", Quantity: 1}})
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if svcerr.KindOf(err) != svcerr.FailedPrecondition {
				t.Errorf("unexpected error %v", err)
			}
		}(i)
	}
	wg.Wait()
	if ok != 10 || stock(t, c, "sku-limited") != 0 {
		t.Fatalf("sold %d, stock %d; want 10 and 0", ok, stock(t, c, "sku-limited"))
	}
}
