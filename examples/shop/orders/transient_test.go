package orders_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/internal/testnet"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// TestOrderWaitsOutRestartingCatalog places an order while catalog is restarting: its
// gRPC address refuses connections for about 3 s (a real listener, started late), then
// catalog serves again. The order's reserve step waits it out and the order is
// confirmed, not cancelled because a process blinked.
func TestOrderWaitsOutRestartingCatalog(t *testing.T) {
	port := testnet.Reserve(t) // refused until the restarted catalog listens on it
	addr := port.Addr()
	cc, err := grpcgo.NewClient(addr, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	remote := catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(cc))

	refused := make(chan struct{})
	var once sync.Once
	var local catalog.Catalog
	o := newOrders(t, func(c catalog.Catalog) catalog.Catalog {
		local = c
		return failingReserve{c, func(ctx context.Context, id string, items []catalog.Item) (catalog.Reservation, error) {
			r, err := remote.Reserve(ctx, id, items)
			if err != nil {
				once.Do(func() { close(refused) })
			}
			return r, err
		}}
	}, nil)

	// catalog comes back about 3 s after it first refused the order.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(stop)
	wg.Go(func() {
		select {
		case <-refused:
		case <-ctx.Done():
			return
		}
		select {
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
			return
		}
		srv := sgrpc.NewServer(catalog.CatalogGRPCService)
		catalog.RegisterCatalogGRPC(srv, catalog.MakeCatalogEndpoints(local))
		g := sgrpc.NewGRPCServer(nil)
		srv.Register(g)
		ln, err := port.Listen()
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			return
		}
		go func() { _ = g.Serve(ln) }()
		<-ctx.Done()
		g.Stop()
	})

	placed, err := o.PlaceOrder(context.Background(), "ada", []orders.Item{{ProductID: "sku-kettle", Quantity: 1}}, orders.NewID())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-refused:
	default:
		t.Fatal("catalog never refused the order: the test did not test a restart")
	}
	got := waitFinal(t, o, placed.ID)
	if got.Status != "confirmed" {
		t.Fatalf("order %s (%q), want confirmed once catalog is back", got.Status, got.Reason)
	}
}

// TestPlaceOrderAnswersPending places an order while catalog is unavailable, with a
// caller's deadline of 5 s: PlaceOrder answers before that deadline with the order
// pending (not an error, not cancelled), and once catalog is back the order is confirmed.
func TestPlaceOrderAnswersPending(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	o := newOrders(t, func(c catalog.Catalog) catalog.Catalog {
		return failingReserve{c, func(ctx context.Context, id string, items []catalog.Item) (catalog.Reservation, error) {
			if down.Load() {
				return catalog.Reservation{}, svcerr.New(svcerr.Unavailable, "service unavailable")
			}
			return c.Reserve(ctx, id, items)
		}}
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	placed, err := o.PlaceOrder(ctx, "ada", []orders.Item{{ProductID: "sku-kettle", Quantity: 1}}, orders.NewID())
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Errorf("PlaceOrder answered after the caller's deadline")
	}
	if placed.Status != "pending" || placed.ID == "" {
		t.Fatalf("order %+v, want pending with an id while catalog is down", placed)
	}
	down.Store(false)
	if got := waitFinal(t, o, placed.ID); got.Status != "confirmed" {
		t.Fatalf("order %s (%q), want confirmed once catalog is back", got.Status, got.Reason)
	}
}

// waitFinal polls GetOrder until the order is no longer pending, as a client does.
func waitFinal(t *testing.T, o *orders.Service, id string) orders.Order {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		got, err := o.GetOrder(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "pending" || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}
