package orders_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

type shop struct {
	orders   *orders.Service
	catalog  *catalog.Service
	payments *payments.Service
	outbox   *outbox.Outbox
}

func newShop(t testing.TB) *shop {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	mk := func(name string) *store.Store {
		st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	catSt, paySt, ordSt := mk("catalog"), mk("payments"), mk("orders")
	if err := catSt.Migrate(ctx, catalog.Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	if err := paySt.Migrate(ctx, payments.Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	if err := ordSt.Migrate(ctx, orders.Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	catOb, err := outbox.New(ctx, catSt)
	if err != nil {
		t.Fatal(err)
	}
	ordOb, err := outbox.New(ctx, ordSt)
	if err != nil {
		t.Fatal(err)
	}
	sagas, err := saga.New(ctx, ordSt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sagas.Close(context.Background()) })
	cat := catalog.New(catSt, catOb, 5)
	pay := payments.New(paySt, payments.DeclineRule{AboveCents: 50_000, CustomerPrefix: "decline"})
	return &shop{orders: orders.New(ordSt, ordOb, sagas, cat, pay), catalog: cat, payments: pay, outbox: ordOb}
}

func (s *shop) stock(t *testing.T, id string) int64 {
	p, err := s.catalog.GetProduct(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p.Stock
}

func TestOrderSaga(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	tests := []struct {
		name, customer string
		items          []orders.Item
		status         string
		reason         string
		payment        string // the payment's status afterwards, "" for none
	}{
		{"confirmed", "ada", []orders.Item{{ProductID: "sku-kettle", Quantity: 2}}, "confirmed", "", "charged"},
		{"declined card", "decline-bob", []orders.Item{{ProductID: "sku-kettle", Quantity: 1}}, "cancelled", "declined", "declined"},
		{"over the limit", "cy", []orders.Item{{ProductID: "sku-grinder", Quantity: 6}}, "cancelled", "exceeds the limit", "declined"},
		{"no stock", "dan", []orders.Item{{ProductID: "sku-limited", Quantity: 11}}, "cancelled", "not enough stock", ""},
		{"unknown product", "eve", []orders.Item{{ProductID: "nope", Quantity: 1}}, "cancelled", "does not exist", ""},
	}
	kettles := s.stock(t, "sku-kettle")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := s.orders.PlaceOrder(ctx, tc.customer, tc.items, orders.NewID())
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != tc.status || !strings.Contains(o.Reason, tc.reason) {
				t.Fatalf("order %+v, want %s with reason %q", o, tc.status, tc.reason)
			}
			got, err := s.orders.GetOrder(ctx, o.ID)
			if err != nil || got.Status != tc.status {
				t.Fatalf("GetOrder = %+v, %v", got, err)
			}
			// PlaceOrder answers a confirmed order from its saga's state, the others from
			// the row: either way, what GetOrder reads.
			if !reflect.DeepEqual(o, got) {
				t.Fatalf("PlaceOrder answered %+v, GetOrder reads %+v", o, got)
			}
			pay, err := s.payments.GetPayment(ctx, o.ID)
			if tc.payment == "" {
				if svcerr.KindOf(err) != svcerr.NotFound {
					t.Fatalf("payment exists for an order that never reached payment: %+v", pay)
				}
			} else if pay.Status != tc.payment {
				t.Fatalf("payment %+v, want %s", pay, tc.payment)
			}
		})
	}
	// Only the confirmed order keeps its stock; the declined ones released theirs.
	if got := s.stock(t, "sku-kettle"); got != kettles-2 {
		t.Fatalf("kettle stock = %d, want %d", got, kettles-2)
	}
	if got := s.stock(t, "sku-limited"); got != 10 {
		t.Fatalf("limited stock = %d, want 10", got)
	}
	// Every order published OrderPlaced and one final event.
	if n, err := s.outbox.Pending(ctx); err != nil || n != 2*len(tests) {
		t.Fatalf("orders outbox holds %d events, want %d (%v)", n, 2*len(tests), err)
	}
}

func TestConcurrentOrdersNeverOversell(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	confirmed := 0
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := s.orders.PlaceOrder(ctx, "ada", []orders.Item{{ProductID: "sku-limited", Quantity: 1}}, orders.NewID())
			if err != nil {
				t.Error(err)
				return
			}
			if o.Status == "confirmed" {
				mu.Lock()
				confirmed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if confirmed != 10 || s.stock(t, "sku-limited") != 0 {
		t.Fatalf("confirmed %d, stock %d; want 10 and 0", confirmed, s.stock(t, "sku-limited"))
	}
}

func TestPlaceOrderValidation(t *testing.T) {
	s := newShop(t)
	for _, items := range [][]orders.Item{nil, {{ProductID: "", Quantity: 1}}, {{ProductID: "x", Quantity: 0}}} {
		if _, err := s.orders.PlaceOrder(context.Background(), "ada", items, orders.NewID()); svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Fatalf("items %v: err %v", items, err)
		}
	}
	if _, err := s.orders.GetOrder(context.Background(), "ord_missing"); svcerr.KindOf(err) != svcerr.NotFound {
		t.Fatalf("missing order: %v", err)
	}
}

// TestPlaceOrderOnceByID: a call made again with the same id (its answer was lost, the
// service restarted under it) places the order once and answers as the first did; the id
// of another customer's order is refused, a malformed id is invalid, and a call without
// one (a caller from before ids) gets a new order.
func TestPlaceOrderOnceByID(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	before := s.stock(t, "sku-limited")
	id := orders.IDFor("ada", "key-1")
	items := []orders.Item{{ProductID: "sku-limited", Quantity: 1}}
	first, err := s.orders.PlaceOrder(ctx, "ada", items, id)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.orders.PlaceOrder(ctx, "ada", items, id)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != id || again.ID != id || again.Status != first.Status || first.Status != "confirmed" {
		t.Fatalf("first %+v, again %+v; want the same confirmed order %s", first, again, id)
	}
	if got := s.stock(t, "sku-limited"); got != before-1 {
		t.Fatalf("stock %d after two calls with one id, want %d", got, before-1)
	}
	if _, err := s.orders.PlaceOrder(ctx, "eve", items, id); svcerr.KindOf(err) != svcerr.AlreadyExists {
		t.Fatalf("another customer's order id: err %v, want already_exists", err)
	}
	if orders.IDFor("eve", "key-1") == id {
		t.Fatal("two customers' keys give one id")
	}
	if o, err := s.orders.PlaceOrder(ctx, "ada", items, ""); err != nil || !orders.ValidID(o.ID) || o.ID == id {
		t.Fatalf("without an id: %+v, %v; want a new order", o, err)
	}
	for _, bad := range []string{"ord_", "ord_xyz", "ORD_0123456789abcdef0123", "ord_0123456789ABCDEF0123", "x" + id} {
		if _, err := s.orders.PlaceOrder(ctx, "ada", items, bad); svcerr.KindOf(err) != svcerr.InvalidArgument {
			t.Errorf("id %q: err %v, want invalid_argument", bad, err)
		}
	}
}
