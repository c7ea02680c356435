package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/gateway"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
	_ "github.com/svckit/svckit/store/sqlite"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// flakyCatalog is a catalog whose Reserve is unavailable while down is set, as a
// catalog that is restarting.
type flakyCatalog struct {
	catalog.Catalog
	down *atomic.Bool
}

func (c flakyCatalog) Reserve(ctx context.Context, id string, items []catalog.Item) (catalog.Reservation, error) {
	if c.down.Load() {
		return catalog.Reservation{}, svcerr.New(svcerr.Unavailable, "service unavailable")
	}
	return c.Catalog.Reserve(ctx, id, items)
}

// TestPlaceOrderPending places an order through the gateway's HTTP API, and the gateway
// calls orders over gRPC, while catalog is unavailable. The request's deadline (4 s,
// X-Request-Timeout) ends before the order's saga: the answer is 200 with the order
// pending and its id, not an error. Once catalog is back, GET /orders/{id} shows the
// order confirmed.
func TestPlaceOrderPending(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func(name string) *store.Store {
		st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	catSt, paySt, ordSt := open("catalog"), open("payments"), open("orders")
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
	var down atomic.Bool
	down.Store(true)
	cat := catalog.New(catSt, catOb, 5)
	ord := orders.New(ordSt, ordOb, sagas, flakyCatalog{cat, &down}, payments.New(paySt, payments.DeclineRule{}))

	// orders over gRPC on loopback, as the gateway reaches it.
	osrv := sgrpc.NewServer(orders.OrdersGRPCService)
	orders.RegisterOrdersGRPC(osrv, orders.MakeOrdersEndpoints(ord))
	g := sgrpc.NewGRPCServer(nil)
	osrv.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	cc, err := grpcgo.NewClient(ln.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })

	gw := gateway.New(orders.NewOrdersClient(orders.NewOrdersGRPCClient(cc)), cat)
	srv := shttp.NewServer("gateway", shttp.WithMiddleware(asAda))
	gateway.RegisterGatewayHTTP(srv, gateway.MakeGatewayEndpoints(gw))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	call := func(method, path, body string, header map[string]string) (int, gateway.Order, string) {
		t.Helper()
		req, err := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var o gateway.Order
		_ = json.Unmarshal(raw, &o)
		return resp.StatusCode, o, string(raw)
	}

	code, placed, raw := call("POST", "/orders", `{"items":[{"productId":"sku-kettle","quantity":1}]}`,
		map[string]string{shttp.TimeoutHeader: "4000"})
	if code != http.StatusOK || placed.Status != "pending" || placed.ID == "" {
		t.Fatalf("POST /orders while catalog is down: %d %s, want 200 with the order pending and its id", code, raw)
	}
	down.Store(false)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, got, raw := call("GET", "/orders/"+placed.ID, "", nil)
		if code != http.StatusOK {
			t.Fatalf("GET /orders/%s: %d %s", placed.ID, code, raw)
		}
		if got.Status != "pending" {
			if got.Status != "confirmed" {
				t.Fatalf("order %s (%q), want confirmed once catalog is back", got.Status, got.Reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still pending after catalog came back")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// With an Idempotency-Key, a request sent again answers with the order of the first.
	body := `{"items":[{"productId":"sku-kettle","quantity":1}]}`
	key := map[string]string{"Idempotency-Key": "checkout-42"}
	code, first, raw := call("POST", "/orders", body, key)
	if code != http.StatusOK || first.Status != "confirmed" {
		t.Fatalf("POST /orders with a key: %d %s", code, raw)
	}
	code, again, raw := call("POST", "/orders", body, key)
	if code != http.StatusOK || again.ID != first.ID || again.Status != "confirmed" {
		t.Fatalf("POST /orders with the same key: %d %s, want order %s again", code, raw, first.ID)
	}
	if code, other, _ := call("POST", "/orders", body, map[string]string{"Idempotency-Key": "checkout-43"}); code != http.StatusOK || other.ID == first.ID {
		t.Fatalf("another key: %d, order %s (the first was %s)", code, other.ID, first.ID)
	}
	if code, _, raw := call("POST", "/orders", body, map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}); code != http.StatusBadRequest {
		t.Fatalf("a 256-byte key: %d %s, want 400", code, raw)
	}
}
