package shop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/internal/devrun"
	"github.com/svckit/svckit/store"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// TestShopEndToEnd starts the whole shop through devrun — the code path of `svckit dev`:
// build, embedded NATS, five services as supervised processes — places orders through
// the gateway with a real HTTP client, and checks every service's own store: confirmed
// orders charged once and their stock taken, declined orders cancelled with their stock
// released, every event delivered to notifications once, and one trace that runs from
// the gateway through orders to catalog and payments and on to the event consumer.
func TestShopEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the five shop services")
	}
	ctx := context.Background()
	state := t.TempDir()
	var out bytes.Buffer
	var outMu sync.Mutex
	sys, err := devrun.Start(ctx, devrun.Options{Dir: ".", StateDir: state, Out: writerFunc(func(p []byte) (int, error) {
		outMu.Lock()
		defer outMu.Unlock()
		return out.Write(p)
	}), Quiet: true, Grace: 10 * time.Second,
		// The notifications digest every 2 s instead of every 30 s, so that both
		// replicas meet several ticks during the test.
		ExtraEnv: []string{"DIGEST=*/2 * * * * *"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Stop(ctx)
	readyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		outMu.Lock()
		t.Fatalf("%v\n%s", err, out.String())
	}
	checkMTLS(t, sys)
	gw := sys.PublicURL()
	token := func(subject string) string {
		tok, err := sys.DevToken(subject)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	place := func(subject string, items string) map[string]any {
		req, _ := http.NewRequest("POST", gw+"/orders", strings.NewReader(`{"items":`+items+`}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token(subject))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST /orders: %d %s", resp.StatusCode, body)
		}
		var o map[string]any
		if err := json.Unmarshal(body, &o); err != nil {
			t.Fatal(err)
		}
		return o
	}

	// Bad callers are refused before anything happens.
	resp, err := http.Post(gw+"/orders", "application/json", strings.NewReader(`{"items":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("order without a token: %d, want 401", resp.StatusCode)
	}

	const good, declined = 12, 4
	var mu sync.Mutex
	// Order id → the customer who placed it.
	confirmed, cancelled := map[string]string{}, map[string]string{}
	var wg sync.WaitGroup
	for i := 0; i < good+declined; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			subject := fmt.Sprintf("customer-%d", i)
			if i >= good {
				subject = fmt.Sprintf("decline-%d", i) // the payments decline rule
			}
			o := place(subject, `[{"productId":"sku-kettle","quantity":1},{"productId":"sku-filter","quantity":2}]`)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case i < good && o["status"] == "confirmed":
				confirmed[o["id"].(string)] = subject
			case i >= good && o["status"] == "cancelled" && strings.Contains(o["reason"].(string), "declined"):
				cancelled[o["id"].(string)] = subject
			default:
				t.Errorf("order %d of %s: %v", i, subject, o)
			}
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// GET /orders/{id} shows each order's state to the customer who placed it, and to
	// nobody else.
	get := func(subject, id string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", gw+"/orders/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token(subject))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var o map[string]any
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 {
			if err := json.Unmarshal(body, &o); err != nil {
				t.Fatalf("GET /orders/%s: %v: %s", id, err, body)
			}
		}
		return resp.StatusCode, o
	}
	for want, orders := range map[string]map[string]string{"confirmed": confirmed, "cancelled": cancelled} {
		for id, subject := range orders {
			if code, o := get(subject, id); code != 200 || o["id"] != id || o["status"] != want {
				t.Errorf("GET /orders/%s by %s: %d %v, want %s", id, subject, code, o, want)
			}
			if code, _ := get("someone-else", id); code != http.StatusNotFound {
				t.Errorf("GET /orders/%s by another customer: %d, want 404", id, code)
			}
		}
	}

	// Each service's own store, read the way the service wrote it.
	open := func(name string) *store.Store {
		st, err := store.Open(ctx, "sqlite:"+filepath.Join(state, "data", name+".db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	count := func(st *store.Store, q string, args ...any) int {
		var n int
		if err := st.ReadDB().QueryRowContext(ctx, st.Rebind(q), args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	ordersDB, paymentsDB, catalogDB, notesDB := open("orders"), open("payments"), open("catalog"), open("notifications")
	if n := count(ordersDB, `SELECT COUNT(*) FROM orders WHERE status = 'confirmed'`); n != good {
		t.Errorf("orders store: %d confirmed, want %d", n, good)
	}
	if n := count(ordersDB, `SELECT COUNT(*) FROM orders WHERE status = 'cancelled'`); n != declined {
		t.Errorf("orders store: %d cancelled, want %d", n, declined)
	}
	if n := count(paymentsDB, `SELECT COUNT(*) FROM payments WHERE status = 'charged'`); n != good {
		t.Errorf("payments store: %d charges, want exactly %d (one per confirmed order)", n, good)
	}
	if n := count(paymentsDB, `SELECT COUNT(*) FROM payments WHERE status = 'declined'`); n != declined {
		t.Errorf("payments store: %d declines, want %d", n, declined)
	}
	for id := range confirmed {
		if n := count(paymentsDB, `SELECT COUNT(*) FROM payments WHERE order_id = ?`, id); n != 1 {
			t.Errorf("order %s has %d payments, want 1", id, n)
		}
	}
	if n := count(catalogDB, `SELECT COUNT(*) FROM reservations WHERE status = 'reserved'`); n != good {
		t.Errorf("catalog store: %d reservations held, want %d", n, good)
	}
	if n := count(catalogDB, `SELECT COUNT(*) FROM reservations WHERE status = 'released'`); n != declined {
		t.Errorf("catalog store: %d released, want %d", n, declined)
	}
	if n := count(catalogDB, `SELECT 100000 - stock FROM products WHERE id = 'sku-kettle'`); n != good {
		t.Errorf("catalog store: %d kettles gone, want %d", n, good)
	}
	checkForgedEventRefused(t, sys)
	// Notifications: OrderPlaced and one final event per order, each recorded once — and
	// nothing for the forged event.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := count(notesDB, `SELECT COUNT(*) FROM notifications`)
		if n == 2*(good+declined) {
			break
		}
		if n > 2*(good+declined) || time.Now().After(deadline) {
			t.Fatalf("notifications store: %d notifications, want %d", n, 2*(good+declined))
		}
		time.Sleep(200 * time.Millisecond)
	}

	if n := count(notesDB, `SELECT COUNT(*) FROM notifications WHERE order_id = 'forged-1'`); n != 0 {
		t.Errorf("notifications stored %d notifications of a forged event", n)
	}

	// StockLow: an order that leaves sku-limited (10 in stock) below catalog's threshold of
	// 5 publishes StockLow through catalog's outbox to the SHOP stream on NATS.
	if o := place("customer-limited", `[{"productId":"sku-limited","quantity":6}]`); o["status"] != "confirmed" {
		t.Fatalf("order of 6 sku-limited: %v", o)
	}
	checkStockLow(t, sys, "sku-limited", 4)

	// The digest runs on both notifications replicas' schedulers, and each tick on one of
	// them only.
	checkDigest(t, sys, notesDB, count)

	// An order's trace crosses every hop, the event consumer included.
	deadline = time.Now().Add(30 * time.Second)
	for {
		found := false
		for _, s := range sys.Traces.Query(devrun.TraceFilter{Service: "gateway", Name: "PlaceOrder", Limit: 1000}) {
			services := map[string]bool{}
			for _, name := range s.Services {
				services[name] = true
			}
			if services["gateway"] && services["orders"] && services["catalog"] && services["payments"] && services["notifications"] {
				found = true
				break
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no trace of PlaceOrder spans gateway, orders, catalog, payments and notifications")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkStockLow waits for the StockLow event of product in the SHOP stream.
func checkStockLow(t *testing.T, sys *devrun.System, product string, stock int64) {
	t.Helper()
	nc, err := nats.Connect(sys.NATS.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	// svckit dev gives its services NATS_DUPLICATE_WINDOW=30s, which App.Bus applies.
	if info, err := js.StreamInfo("SHOP"); err != nil || info.Config.Duplicates != 30*time.Second {
		t.Errorf("SHOP stream under svckit dev: %v, duplicate window %v, want 30s", err, info.Config.Duplicates)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Keyed events go to <subject>._k.<partition> (see pubsub).
		msg, err := js.GetLastMsg("SHOP", catalog.SubjectStockLow+".>")
		if err == nil {
			var e catalog.StockLow
			if err := json.Unmarshal(msg.Data, &e); err != nil {
				t.Fatalf("StockLow event %s: %v", msg.Data, err)
			}
			if e.ProductID == product && e.Stock == stock {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no StockLow event for %s with stock %d in the SHOP stream (last: %v)", product, stock, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkDigest waits until the digest has run for at least three ticks, then checks that
// every tick was run by one replica only (one "digest" log line per tick), claimed in the
// store by that replica and recorded once, while both notifications replicas ran.
func checkDigest(t *testing.T, sys *devrun.System, notesDB *store.Store, count func(*store.Store, string, ...any) int) {
	t.Helper()
	type run struct{ instances []string }
	var ticks map[int64]*run
	deadline := time.Now().Add(30 * time.Second)
	for {
		ticks = map[int64]*run{}
		for _, l := range sys.Logs.Query(devrun.LogFilter{Service: "notifications", Text: `"msg":"digest"`, Limit: 10000}) {
			if l.Msg != "digest" {
				continue
			}
			tick, ok := l.Attrs()["tick"].(float64)
			if !ok {
				t.Fatalf("digest line without a tick: %s", l.Raw)
			}
			r := ticks[int64(tick)]
			if r == nil {
				r = &run{}
				ticks[int64(tick)] = r
			}
			r.instances = append(r.instances, l.Instance)
		}
		if len(ticks) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the digest ran for %d ticks in 30 s, want at least 3 (every 2 s)", len(ticks))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for tick, r := range ticks {
		if len(r.instances) != 1 {
			t.Errorf("digest tick %d ran on %v, want one replica", tick, r.instances)
			continue
		}
		if n := count(notesDB, `SELECT COUNT(*) FROM digests WHERE tick = ?`, tick); n != 1 {
			t.Errorf("digest tick %d: %d rows in the notifications store, want 1", tick, n)
		}
		// The tick's claim names the replica that ran it.
		var holder string
		err := notesDB.ReadDB().QueryRowContext(context.Background(), notesDB.Rebind(
			`SELECT holder FROM schedule_runs WHERE job = 'digest' AND tick = ?`), time.Unix(tick, 0).UnixNano()).Scan(&holder)
		if err != nil || holder != r.instances[0] {
			t.Errorf("digest tick %d: claimed by %q (%v), but run by %s", tick, holder, err, r.instances[0])
		}
	}
	byInstance := map[string]int{}
	for _, r := range ticks {
		byInstance[r.instances[0]]++
	}
	t.Logf("digest: %d ticks, run by %v", len(ticks), byInstance)
	// Two replicas compete for every tick: the manifest runs notifications twice.
	running := 0
	for _, in := range sys.Instances {
		if in.Service == "notifications" && in.Status().State == devrun.StateRunning {
			running++
		}
	}
	if running != 2 {
		t.Errorf("%d notifications replicas running, want the manifest's 2", running)
	}
}

// checkForgedEventRefused attacks the bus: an anonymous client is refused, and catalog's
// user cannot publish an OrderConfirmed (the forgery of an order that never existed):
// the server refuses it with a permissions violation.
func checkForgedEventRefused(t *testing.T, sys *devrun.System) {
	t.Helper()
	if nc, err := nats.Connect(sys.NATS.PlainURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("an anonymous client connected to the shop's NATS")
	}
	u, ok := sys.NATSUser("catalog")
	if !ok {
		t.Fatal("no NATS user for catalog")
	}
	violations := make(chan error, 4)
	nc, err := nats.Connect(sys.NATS.PlainURL(), nats.UserInfo(u.Name, u.Password),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatalf("catalog's NATS user: %v", err)
	}
	defer nc.Close()
	forged := &nats.Msg{Subject: "shop.orders.confirmed", Header: nats.Header{
		"ce-id": {"forged-1-confirmed"}, "ce-source": {"orders"}, "ce-type": {"shop.orders.OrderConfirmed"},
		"ce-specversion": {"1.0"}, "Nats-Msg-Id": {"forged-1-confirmed"}, "content-type": {"application/json"},
	}, Data: []byte(`{"orderId":"forged-1","customer":"victim","totalCents":99999}`)}
	if err := nc.PublishMsg(forged); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	select {
	case err := <-violations:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("forged publish: %v, want a permissions violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the forged OrderConfirmed was not refused")
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// checkMTLS: svckit.yaml turns mTLS on, so every service's gRPC listener refuses a
// caller without a certificate and serves one holding a certificate of the system's CA.
func checkMTLS(t *testing.T, sys *devrun.System) {
	t.Helper()
	if sys.ClientTLS() == nil {
		t.Fatal("svckit.yaml has mtls: true, but the runner has no client certificate")
	}
	checked := 0
	for _, in := range sys.Instances {
		addr := in.Addrs["grpc"]
		if addr == "" {
			continue
		}
		checked++
		check := func(cred grpc.DialOption) error {
			cc, err := grpc.NewClient(addr, cred)
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}
		if err := check(grpc.WithTransportCredentials(insecure.NewCredentials())); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: a plaintext caller got %v, want Unavailable", in.ID, err)
		}
		if err := check(sgrpc.DialCredentials(sys.ClientTLS())); err != nil {
			t.Errorf("%s: a caller with the system's certificate: %v", in.ID, err)
		}
	}
	if checked < 5 {
		t.Errorf("checked the gRPC listeners of %d instances, want every service's", checked)
	}
}
