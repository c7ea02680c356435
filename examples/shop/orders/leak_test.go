package orders_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/internal/testnet"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// newOrders returns the orders service over the real catalog and payments, each of whose
// methods wrap may replace, configured by opts.
func newOrders(t *testing.T, wrapCat func(catalog.Catalog) catalog.Catalog, wrapPay func(payments.Payments) payments.Payments, opts ...orders.Option) *orders.Service {
	t.Helper()
	s := newShop(t)
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "orders2.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx, orders.Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	sagas, err := saga.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sagas.Close(context.Background()) })
	var cat catalog.Catalog = s.catalog
	var pay payments.Payments = s.payments
	if wrapCat != nil {
		cat = wrapCat(cat)
	}
	if wrapPay != nil {
		pay = wrapPay(pay)
	}
	return orders.New(st, ob, sagas, cat, pay, opts...)
}

// failingReserve is a catalog whose Reserve fails as reserve says.
type failingReserve struct {
	catalog.Catalog
	reserve func(ctx context.Context, orderID string, items []catalog.Item) (catalog.Reservation, error)
}

func (c failingReserve) Reserve(ctx context.Context, orderID string, items []catalog.Item) (catalog.Reservation, error) {
	return c.reserve(ctx, orderID, items)
}

// failingCharge is a payments service whose Charge fails with err.
type failingCharge struct {
	payments.Payments
	err error
}

func (p failingCharge) Charge(context.Context, string, string, int64) (payments.Payment, error) {
	return payments.Payment{}, p.err
}

// TestReasonsHideInternals fails an order's steps with errors that carry addresses and
// transport text, the way a remote call fails: the order is cancelled with a fixed
// reason, naming its trace, and the stored and returned reason carries none of the text.
func TestReasonsHideInternals(t *testing.T) {
	dead := testnet.Reserve(t).Addr()
	cc, err := grpcgo.NewClient(dead, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	remote := catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(cc))

	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	traced := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled}))

	const stockDown = "the stock could not be reserved right now; try again later"
	const paymentDown = "the payment could not be made right now; try again later"
	tests := []struct {
		name    string
		ctx     context.Context
		wrapCat func(catalog.Catalog) catalog.Catalog
		wrapPay func(payments.Payments) payments.Payments
		want    string
	}{
		{"catalog unreachable over gRPC", traced, func(c catalog.Catalog) catalog.Catalog {
			return failingReserve{c, remote.Reserve}
		}, nil, stockDown + " (trace " + traceID.String() + ")"},
		{"catalog fails with a plain error", context.Background(), func(c catalog.Catalog) catalog.Catalog {
			return failingReserve{c, func(context.Context, string, []catalog.Item) (catalog.Reservation, error) {
				return catalog.Reservation{}, errors.New("dial tcp 10.0.0.7:5432: connect: connection refused")
			}}
		}, nil, stockDown},
		{"payments unavailable with transport text", traced, nil, func(p payments.Payments) payments.Payments {
			return failingCharge{p, svcerr.New(svcerr.Unavailable, "read tcp 127.0.0.1:40720->127.0.0.1:8083: read: connection reset by peer")}
		}, paymentDown + " (trace " + traceID.String() + ")"},
		{"payments internal error", context.Background(), nil, func(p payments.Payments) payments.Payments {
			return failingCharge{p, svcerr.Wrap(svcerr.Internal, "rpc error: code = Internal desc = grpc: error unmarshalling", nil)}
		}, paymentDown},
		// A business refusal is the customer's to read.
		{"payment declined", context.Background(), nil, func(p payments.Payments) payments.Payments {
			return failingCharge{p, svcerr.New(svcerr.FailedPrecondition, "payment declined: card expired")}
		}, "payment declined: card expired"},
	}
	forbidden := []string{"127.0.0.1", "10.0.0.7", "dial tcp", "read tcp", "connection", "rpc error", "transport", "desc ="}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A short budget: the unavailable peers never come back.
			o := newOrders(t, tt.wrapCat, tt.wrapPay, orders.WithStepBudget(300*time.Millisecond))
			placed, err := o.PlaceOrder(tt.ctx, "ada", []orders.Item{{ProductID: "sku-kettle", Quantity: 1}}, orders.NewID())
			if err != nil {
				t.Fatal(err)
			}
			got, err := o.GetOrder(context.Background(), placed.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []string{placed.Reason, got.Reason} {
				if got.Status != "cancelled" || r != tt.want {
					t.Errorf("order %s with reason %q, want cancelled with %q", got.Status, r, tt.want)
				}
				for _, f := range forbidden {
					if strings.Contains(r, f) {
						t.Errorf("the reason carries %q: %q", f, r)
					}
				}
			}
		})
	}
}
