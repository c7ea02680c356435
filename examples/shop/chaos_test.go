package shop_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/internal/devrun"
	"github.com/svckit/svckit/internal/loadgen"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// TestChaosUnderLoad places orders continuously while payments and then orders are
// SIGKILLed once each and restarted by the supervisor. Afterwards every order ends
// confirmed or cancelled, every accepted order is stored as its answer said, none is
// charged twice, and stock is conserved: what every product had at the start equals what
// it has now plus what confirmed orders hold. Beside the kills, faults are injected all
// along (chaosFaults): 20% of catalog.Reserve fail with Unavailable and payments.Charge
// waits 300 ms.
func TestChaosUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the five shop services")
	}
	ctx := context.Background()
	run := startChaosRun(t)
	sys, readyCtx := run.sys, run.ready
	ordersDB, paymentsDB, catalogDB := run.db("orders"), run.db("payments"), run.db("catalog")
	query := run.count
	stockBefore := query(catalogDB, `SELECT SUM(stock) FROM products`)
	faults := startChaosFaults(t, sys)
	tokens := run.tokens()
	var accepted atomic.Int64
	// Every accepted order (200) by id, with the status its answer gave.
	var acceptedMu sync.Mutex
	answered := map[string]string{}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	var res loadgen.Result
	go func() {
		defer wg.Done()
		res, _ = loadgen.Run(loadCtx, loadgen.Options{
			Concurrency: 8, Duration: 5 * time.Minute,
			Next: func(w int, _ int64) loadgen.Request {
				return loadgen.Request{URL: sys.PublicURL() + "/orders",
					Body:   []byte(`{"items":[{"productId":"sku-espresso","quantity":1},{"productId":"sku-filter","quantity":3}]}`),
					Header: http.Header{"Authorization": {"Bearer " + tokens[w]}}}
			},
			OK: func(status int, b []byte) bool {
				var o struct{ ID, Status string }
				if status != 200 || json.Unmarshal(b, &o) != nil || o.ID == "" {
					return false
				}
				accepted.Add(1)
				acceptedMu.Lock()
				answered[o.ID] = o.Status
				acceptedMu.Unlock()
				return true
			},
		})
	}()
	kill := func(id string) {
		in := sys.Instance(id)
		before := in.Status().Restarts
		time.Sleep(1500 * time.Millisecond)
		if err := in.Kill(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for in.Status().Restarts == before || in.Status().State != devrun.StateRunning {
			if time.Now().After(deadline) {
				t.Fatalf("%s was not restarted", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := sys.WaitReady(readyCtx); err != nil {
			t.Fatal(err)
		}
	}
	faults.kill(t, kill, "payments-1")
	faults.kill(t, kill, "orders-1")
	time.Sleep(1500 * time.Millisecond)
	stopLoad()
	wg.Wait()
	t.Logf("load: %s; accepted %d; answers by status %v", res, accepted.Load(), res.ByStatus)
	if accepted.Load() == 0 {
		t.Fatal("no order was accepted")
	}

	// Every order ends: sagas interrupted by the kills are resumed by the restarted orders.
	deadline := time.Now().Add(90 * time.Second)
	for query(ordersDB, `SELECT COUNT(*) FROM orders WHERE status NOT IN ('confirmed', 'cancelled')`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d orders never ended", query(ordersDB, `SELECT COUNT(*) FROM orders WHERE status NOT IN ('confirmed', 'cancelled')`))
		}
		time.Sleep(200 * time.Millisecond)
	}
	confirmed := query(ordersDB, `SELECT COUNT(*) FROM orders WHERE status = 'confirmed'`)
	cancelledN := query(ordersDB, `SELECT COUNT(*) FROM orders WHERE status = 'cancelled'`)
	if int64(confirmed+cancelledN) < accepted.Load() {
		t.Fatalf("orders store holds %d orders, fewer than the %d accepted", confirmed+cancelledN, accepted.Load())
	}
	// No order charged twice, and charges match confirmed orders exactly.
	if dup := query(paymentsDB, `SELECT COUNT(*) FROM (SELECT order_id FROM payments GROUP BY order_id HAVING COUNT(*) > 1)`); dup != 0 {
		t.Fatalf("%d orders have more than one payment", dup)
	}
	if charged := query(paymentsDB, `SELECT COUNT(*) FROM payments WHERE status = 'charged'`); charged != confirmed {
		t.Errorf("%d charges for %d confirmed orders", charged, confirmed)
	}
	// Stock is conserved: available now + held by confirmed orders = available before.
	held := query(catalogDB, `SELECT COALESCE(SUM(i.quantity), 0) FROM reservation_items i JOIN reservations r ON r.order_id = i.order_id WHERE r.status = 'reserved'`)
	if after := query(catalogDB, `SELECT SUM(stock) FROM products`); after+held != stockBefore {
		t.Fatalf("stock not conserved: before %d, after %d + held %d", stockBefore, after, held)
	}
	if reserved := query(catalogDB, `SELECT COUNT(*) FROM reservations WHERE status = 'reserved'`); reserved != confirmed {
		t.Errorf("%d reservations held for %d confirmed orders", reserved, confirmed)
	}
	// Order by order: every accepted order is stored with the status its answer gave
	// (or, if the answer said pending, with a final one); a confirmed order is charged and
	// holds its reservation, a cancelled one neither.
	rows := func(st *store.Store, q string) map[string]string {
		r, err := st.ReadDB().QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer r.Close()
		m := map[string]string{}
		for r.Next() {
			var id, status string
			if err := r.Scan(&id, &status); err != nil {
				t.Fatal(err)
			}
			m[id] = status
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	stored := rows(ordersDB, `SELECT id, status FROM orders`)
	payment := rows(paymentsDB, `SELECT order_id, status FROM payments`)
	reservation := rows(catalogDB, `SELECT order_id, status FROM reservations`)
	for id, said := range answered {
		got, ok := stored[id]
		switch {
		case !ok:
			t.Errorf("accepted order %s (answered %s) is not in the orders store", id, said)
			continue
		case said != "pending" && got != said:
			t.Errorf("accepted order %s: answered %s, stored %s", id, said, got)
		}
		switch got {
		case "confirmed":
			if payment[id] != "charged" || reservation[id] != "reserved" {
				t.Errorf("confirmed order %s: payment %q, reservation %q; want charged and reserved", id, payment[id], reservation[id])
			}
		case "cancelled":
			if payment[id] == "charged" || reservation[id] == "reserved" {
				t.Errorf("cancelled order %s: payment %q, reservation %q; want no charge and no stock held", id, payment[id], reservation[id])
			}
		}
	}
	// And from the other side, accepted or not: money is held only for confirmed orders.
	for id, st := range payment {
		if st == "charged" && stored[id] != "confirmed" {
			_, wasAnswered := answered[id]
			t.Errorf("order %s is charged but stored as %q (accepted by the gateway: %v)", id, stored[id], wasAnswered)
		}
	}
	for id, st := range reservation {
		if st == "reserved" && stored[id] != "confirmed" {
			t.Errorf("order %s holds stock but is stored as %q", id, stored[id])
		}
	}
	t.Logf("orders: %d confirmed, %d cancelled; stock before %d, held %d", confirmed, cancelledN, stockBefore, held)
	faults.report(t)
}

// chaosFaults injects faults beside the kills through each instance's fault control
// (svckit's /faults on the admin port, with the FAULT_TOKEN devrun gives every instance):
// 20% of catalog.Reserve fail with Unavailable, and payments.Charge waits 300 ms. A killed
// instance comes back without faults, so they are set again after its restart. It counts
// the faults injected (svckit_faults_injected_total, read before a kill and at the end)
// and what the order saga did about them (its log lines: steps retried, compensated).
type chaosFaults struct {
	sys   *devrun.System
	rules map[string]fault.Rule // instance id → its rule
	stop  func()
	done  chan struct{}

	mu       sync.Mutex
	injected map[string]float64 // "method kind" → faults counted so far by killed instances
	saga     map[string]int     // "retrying STEP" / "compensating STEP" → log lines of orders
}

func startChaosFaults(t *testing.T, sys *devrun.System) *chaosFaults {
	t.Helper()
	f := &chaosFaults{sys: sys, done: make(chan struct{}), injected: map[string]float64{}, saga: map[string]int{},
		rules: map[string]fault.Rule{
			"catalog-1":  {Method: "catalog.Reserve", Side: fault.ServerSide, AbortPercent: 20, Kind: svcerr.Unavailable},
			"payments-1": {Method: "payments.Charge", Side: fault.ServerSide, Delay: 300 * time.Millisecond},
		}}
	lines, stop := sys.Logs.Subscribe(1 << 16)
	f.stop = stop
	go func() {
		defer close(f.done)
		for l := range lines {
			if l.Service != "orders" || !strings.HasPrefix(l.Msg, "saga: step failed; ") {
				continue
			}
			step, _ := l.Attrs()["step"].(string)
			f.mu.Lock()
			f.saga[strings.TrimPrefix(l.Msg, "saga: step failed; ")+" "+step]++
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { stop(); <-f.done })
	for id := range f.rules {
		f.set(t, id)
	}
	return f
}

func (f *chaosFaults) client(id string) *fault.Client {
	in := f.sys.Instance(id)
	tok := ""
	for _, kv := range in.Env {
		if v, ok := strings.CutPrefix(kv, "FAULT_TOKEN="); ok {
			tok = v
		}
	}
	return &fault.Client{URL: "http://" + in.Addrs["admin"] + "/faults", Token: tok, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

// set injects id's fault.
func (f *chaosFaults) set(t *testing.T, id string) {
	t.Helper()
	if _, err := f.client(id).Add(context.Background(), f.rules[id]); err != nil {
		t.Fatalf("fault on %s: %v", id, err)
	}
}

// counts returns svckit_faults_injected_total of instance id by "method kind".
func (f *chaosFaults) counts(t *testing.T, id string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + f.sys.Instance(id).Addrs["admin"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "svckit_faults_injected_total{")
		if !ok {
			continue
		}
		labels, value, _ := strings.Cut(rest, "} ")
		var kind, method string
		for kv := range strings.SplitSeq(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "kind":
				kind = strings.Trim(v, `"`)
			case "method":
				method = strings.Trim(v, `"`)
			}
		}
		n, _ := strconv.ParseFloat(value, 64)
		out[method+" "+kind] += n
	}
	return out
}

// kill kills id as kill does, keeping the faults it counted, and sets its fault again
// once it is back.
func (f *chaosFaults) kill(t *testing.T, kill func(id string), id string) {
	t.Helper()
	if _, ok := f.rules[id]; ok {
		before := f.counts(t, id)
		f.mu.Lock()
		for k, v := range before {
			f.injected[k] += v
		}
		f.mu.Unlock()
	}
	kill(id)
	if _, ok := f.rules[id]; ok {
		f.set(t, id)
	}
}

// report logs what was injected and what the saga did, and checks that the faults hit.
func (f *chaosFaults) report(t *testing.T) {
	t.Helper()
	injected := map[string]float64{}
	f.mu.Lock()
	maps.Copy(injected, f.injected)
	f.mu.Unlock()
	for id := range f.rules {
		for k, v := range f.counts(t, id) {
			injected[k] += v
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Logf("faults injected: %v; order saga log lines: %v", injected, f.saga)
	if injected["catalog.Reserve unavailable"] == 0 || injected["payments.Charge delay"] == 0 {
		t.Errorf("faults were not injected: %v", injected)
	}
}
