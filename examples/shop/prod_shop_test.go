//go:build integration

package shop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/store"
)

// TestProdShopOnRealEngines runs the shop as it runs in production: every service a
// process of its own, each with its own PostgreSQL database, events on a three-node NATS
// JetStream cluster with streams and the registry replicated three times, peers found
// through the NATS KV registry (orders finds payments through DNS SRV records instead),
// traces exported over OTLP to Jaeger and metrics scraped by Prometheus. While orders are
// placed through the gateway, the NATS node that leads the event stream and one of the two
// orders replicas are SIGKILLed and started again. Then every accepted order must be in
// its final state in every service's database (charged once, stock held or released,
// both events delivered once), one order's trace must be in Jaeger with spans from every
// service, every service's request counter must rise in Prometheus, and `promtool check
// metrics` must accept every instance's /metrics.
//
// It needs nats-server, jaeger, prometheus and promtool, and SVCKIT_TEST_POSTGRES_DSN;
// it skips without them unless SVCKIT_PROD_SUITE is set (.ci/run sets it), when it fails.
func TestProdShopOnRealEngines(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the shop and its engines as processes")
	}
	suiteStart := time.Now()
	natsBin := prodBinary(t, "SVCKIT_NATS_SERVER", "nats-server", "go build -o BIN/nats-server github.com/nats-io/nats-server/v2 in the root module")
	jaegerBin := prodBinary(t, "SVCKIT_JAEGER", "jaeger", "cd tools/jaeger && go build -o BIN/jaeger github.com/jaegertracing/jaeger/cmd/jaeger")
	for _, bin := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(bin); err != nil {
			prodMissing(t, "%s not installed (apt-get install -y prometheus)", bin)
		}
	}
	pgDSN := os.Getenv("SVCKIT_TEST_POSTGRES_DSN")
	if pgDSN == "" {
		prodMissing(t, "SVCKIT_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	dir := t.TempDir()
	ports := &prodPorts{}
	var procs []*prodProc // every process, for the logs on failure
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("---- last lines of %s:\n%s", p.name, p.tail(25))
			}
		}
	})
	phase := func(format string, args ...any) {
		t.Logf("[%6.1fs] %s", time.Since(suiteStart).Seconds(), fmt.Sprintf(format, args...))
	}

	// The services, built as they are shipped.
	binDir := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	phase("built the services")

	// The engines.
	dbs := pgDatabases(t, pgDSN, "catalog", "payments", "orders", "notifications")
	cluster := startNATSCluster(t, natsBin, dir, ports)
	procs = append(procs, cluster.nodes...)
	jg := startJaeger(t, jaegerBin, dir, ports)
	procs = append(procs, jg.proc)
	issuer, err := auth.NewDevIssuer("https://idp.shop.test", "shop")
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/jwks.json" {
			http.NotFound(w, r)
			return
		}
		issuer.ServeHTTP(w, r)
	}))
	t.Cleanup(idp.Close)
	phase("engines up: NATS cluster %s, Jaeger %s, PostgreSQL databases %d", cluster.URL(), jg.Query, len(dbs))

	// The instances, their ports fixed up front so that a restart keeps them.
	type instance struct {
		service, id             string
		http, grpc, admin       string
		proc                    *prodProc
		extra                   []string
		announce, consumesEvent bool
	}
	newInstance := func(service string, n int, extra ...string) *instance {
		return &instance{service: service, id: fmt.Sprintf("%s-%d", service, n),
			http: ports.next(t), grpc: ports.next(t), admin: ports.next(t), extra: extra}
	}
	catalog := newInstance("catalog", 1)
	payments := newInstance("payments", 1)
	notif := newInstance("notifications", 1)
	// Payments is found through DNS: an SRV record for its gRPC port, as a Kubernetes
	// headless service publishes it, and an A record for the target.
	_, payPort, _ := strings.Cut(payments.grpc, ":")
	port, _ := strconv.Atoi(payPort)
	dns := startDNS(t,
		map[string][]netip.Addr{"payments-1.payments.shop.test.": {netip.MustParseAddr("127.0.0.1")}},
		map[string][]dnsmessage.SRVResource{"_grpc._tcp.payments.shop.test.": {{
			Priority: 10, Weight: 100, Port: uint16(port), Target: dnsmessage.MustNewName("payments-1.payments.shop.test.")}}})
	ordersEnv := []string{"CATALOG_GRPC_ADDRS=natskv:", "PAYMENTS_GRPC_ADDRS=dns://" + dns.Addr() + "/_grpc._tcp.payments.shop.test"}
	orders1 := newInstance("orders", 1, ordersEnv...)
	orders2 := newInstance("orders", 2, ordersEnv...)
	gateway := newInstance("gateway", 1, "ORDERS_GRPC_ADDRS=natskv:", "CATALOG_GRPC_ADDRS=natskv:",
		"JWKS_URL="+idp.URL+"/.well-known/jwks.json", "JWT_ISSUER=https://idp.shop.test", "JWT_AUDIENCE=shop", "RATE=5000")
	all := []*instance{catalog, payments, notif, orders1, orders2, gateway}
	// Mutual TLS between the services, as in the cluster: a CA and a certificate per
	// service; the gateway's public HTTP listener stays plain.
	certDir := filepath.Join(dir, "certs")
	ca, _, err := mtls.EnsureCA(certDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"catalog", "payments", "orders", "notifications", "gateway", "prod-test"} {
		if _, err := ca.IssueFiles(certDir, svc); err != nil {
			t.Fatal(err)
		}
	}
	// The test reads notifications' HTTP API as a service of the trust domain would.
	testTLS, err := mtls.NewSource(filepath.Join(certDir, mtls.CertFile("prod-test")),
		filepath.Join(certDir, mtls.KeyFile("prod-test")), filepath.Join(certDir, mtls.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	mtlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: testTLS.ClientTLS("notifications")}}
	for _, in := range all {
		in.extra = append(in.extra,
			"TLS_CERT="+filepath.Join(certDir, mtls.CertFile(in.service)),
			"TLS_KEY="+filepath.Join(certDir, mtls.KeyFile(in.service)),
			"TLS_CA="+filepath.Join(certDir, mtls.CACertFile))
		if in.service == "gateway" {
			in.extra = append(in.extra, "TLS_HTTP=plain")
		}
	}
	for _, in := range all {
		env := []string{
			"HTTP_ADDR=" + in.http, "GRPC_ADDR=" + in.grpc, "ADMIN_ADDR=" + in.admin,
			"INSTANCE_ID=" + in.id,
			"NATS_URL=" + cluster.URL(), "NATS_REPLICAS=3",
			"NATS_USER=" + cluster.users[in.service].Name, "NATS_PASSWORD=" + cluster.users[in.service].Password,
			"OTEL_TRACES_SAMPLER=parentbased_always_on",
		}
		// Payments and notifications export over OTLP/gRPC, the others over OTLP/HTTP: the
		// trace check below needs spans of all five, so it covers both exporters.
		if in.service == "payments" || in.service == "notifications" {
			env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+jg.OTLPGRPC, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
		} else {
			env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+jg.OTLPHTTP, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf")
		}
		if in.service != "gateway" {
			env = append(env, "STORE_DSN="+dbs[in.service], "ANNOUNCE=natskv")
		}
		in.proc = newProc(dir, in.id, filepath.Join(binDir, in.service), nil, append(env, in.extra...))
		procs = append(procs, in.proc)
	}
	t.Cleanup(func() {
		// Gracefully, the gateway first, as an orchestrator drains a system.
		for i := len(all) - 1; i >= 0; i-- {
			all[i].proc.stop(15 * time.Second)
		}
	})
	ready := func(ctx context.Context, in *instance) {
		t.Helper()
		if err := waitHTTP(ctx, "http://"+in.admin+"/readyz"); err != nil {
			t.Fatalf("%s not ready: %v\n%s", in.id, err, in.proc.tail(30))
		}
	}
	readyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for _, in := range all {
		if err := in.proc.start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range all {
		ready(readyCtx, in)
	}
	phase("%d service instances ready", len(all))

	// The registry holds every announced instance, replicated on the cluster.
	nc, err := nats.Connect(cluster.AdminURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reg, err := natskv.New(readyCtx, nc, natskv.WithReplicas(3))
	if err != nil {
		t.Fatal(err)
	}
	for service, want := range map[string]int{"catalog": 1, "payments": 1, "notifications": 1, "orders": 2} {
		ch, err := reg.Watch(readyCtx, service)
		if err != nil {
			t.Fatal(err)
		}
		for set := range ch {
			if len(set) == want {
				break
			}
		}
		if readyCtx.Err() != nil {
			t.Fatalf("registry: %s never had %d instances", service, want)
		}
	}
	phase("registry (NATS KV, R3) lists catalog, payments, notifications and both orders replicas")

	open := func(service string) *store.Store {
		st, err := store.Open(ctx, dbs[service], store.WithMaxOpenConns(2))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	ordersDB, paymentsDB, catalogDB, notesDB := open("orders"), open("payments"), open("catalog"), open("notifications")
	count := func(st *store.Store, q string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := st.ReadDB().QueryRowContext(ctx, st.Rebind(q), args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	stockBefore := count(catalogDB, `SELECT SUM(stock) FROM products`)

	gw := "http://" + gateway.http
	client := &http.Client{Timeout: 30 * time.Second}
	tokens := map[string]string{}
	subjects := []string{"prod-0", "prod-1", "prod-2", "prod-3", "prod-4", "prod-5", "prod-6", "decline-prod"}
	for _, s := range append(subjects, "prod-probe") {
		tok, err := issuer.Token(s, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		tokens[s] = tok
	}
	const items = `{"items":[{"productId":"sku-espresso","quantity":1},{"productId":"sku-filter","quantity":3}]}`
	type placed struct {
		id, status, reason, subject string
	}
	// place posts one order; traceparent, if not empty, is sent as the caller's trace.
	place := func(ctx context.Context, subject, traceparent string) (int, placed, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw+"/orders", strings.NewReader(items))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokens[subject])
		if traceparent != "" {
			req.Header.Set("Traceparent", traceparent)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, placed{}, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return resp.StatusCode, placed{}, fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		var o struct {
			ID, Status, Reason string
		}
		if err := json.Unmarshal(body, &o); err != nil || o.ID == "" {
			return resp.StatusCode, placed{}, fmt.Errorf("%d but no order in %q: %v", resp.StatusCode, body, err)
		}
		return resp.StatusCode, placed{id: o.ID, status: o.Status, reason: o.Reason, subject: subject}, nil
	}

	var mu sync.Mutex
	var accepted []placed
	failures := map[string]int{}
	var attempts atomic.Int64

	// The first order goes through once the gateway has found orders and catalog.
	warmCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		attempts.Add(1)
		_, o, err := place(warmCtx, "prod-probe", "")
		if err == nil {
			accepted = append(accepted, o)
			break
		}
		if warmCtx.Err() != nil {
			t.Fatalf("no order went through the gateway: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	phase("first order through: %s %s", accepted[0].id, accepted[0].status)

	// Prometheus scrapes every instance's admin port.
	targets := map[string][]string{}
	var jobs []string
	for _, in := range all {
		if _, ok := targets[in.service]; !ok {
			jobs = append(jobs, in.service)
		}
		targets[in.service] = append(targets[in.service], in.admin)
	}
	prom := startPrometheus(t, dir, ports, targets, jobs)
	procs = append(procs, prom.proc)
	counters := func(ctx context.Context) map[string]map[string]float64 {
		s, err := prom.query(ctx, `sum by (job, instance) (svckit_requests_total{side="server"})`)
		if err != nil {
			t.Logf("prometheus: %v", err)
			return nil
		}
		out := map[string]map[string]float64{}
		for _, x := range s {
			if out[x.Labels["job"]] == nil {
				out[x.Labels["job"]] = map[string]float64{}
			}
			out[x.Labels["job"]][x.Labels["instance"]] = x.Value
		}
		return out
	}

	// The load: eight callers, one of them always declined, for the whole run.
	const loadFor = 28 * time.Second
	loadCtx, stopLoad := context.WithTimeout(ctx, loadFor)
	defer stopLoad()
	loadStart := time.Now()
	var wg sync.WaitGroup
	for _, subject := range subjects {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				attempts.Add(1)
				code, o, err := place(loadCtx, subject, "")
				mu.Lock()
				if err == nil {
					accepted = append(accepted, o)
				} else if loadCtx.Err() == nil {
					key := strconv.Itoa(code)
					if code == 0 {
						key = "transport error"
					}
					failures[key]++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	// Meanwhile someone reads notifications, so that the service serves requests too.
	var reads atomic.Int64
	wg.Go(func() {
		for loadCtx.Err() == nil {
			mu.Lock()
			last := accepted[len(accepted)-1].id
			mu.Unlock()
			if resp, err := mtlsClient.Get("https://" + notif.http + "/notifications/" + last); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					reads.Add(1)
				}
			}
			select {
			case <-loadCtx.Done():
			case <-time.After(300 * time.Millisecond):
			}
		}
	})

	// The first reading of the request counters, once Prometheus has every service.
	var before map[string]map[string]float64
	for {
		before = counters(ctx)
		if len(before) == len(jobs) {
			break
		}
		if time.Since(loadStart) > 30*time.Second {
			t.Fatalf("Prometheus has request counters of %d services, want %d: %v", len(before), len(jobs), before)
		}
		time.Sleep(500 * time.Millisecond)
	}
	phase("Prometheus scrapes %d services; first reading %v", len(before), before)

	// Chaos: the NATS node leading the event stream, then an orders replica, are killed
	// mid-run and come back a few seconds later, as an orchestrator restarts them.
	sleepUntil := func(d time.Duration) { time.Sleep(time.Until(loadStart.Add(d))) }
	sleepUntil(7 * time.Second)
	victim := cluster.streamLeader(ctx, "SHOP")
	cluster.nodes[victim].kill()
	phase("SIGKILLed %s (leader of stream SHOP)", cluster.nodes[victim].name)
	sleepUntil(10 * time.Second)
	orders2.proc.kill()
	phase("SIGKILLed orders-2")
	sleepUntil(15 * time.Second)
	if err := cluster.nodes[victim].start(); err != nil {
		t.Fatal(err)
	}
	nodeCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := cluster.waitNode(nodeCtx, victim); err != nil {
		t.Fatalf("%s after restart: %v\n%s", cluster.nodes[victim].name, err, cluster.nodes[victim].tail(30))
	}
	phase("%s back and healthy", cluster.nodes[victim].name)
	sleepUntil(17 * time.Second)
	if err := orders2.proc.start(); err != nil {
		t.Fatal(err)
	}
	restartCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ready(restartCtx, orders2)
	phase("orders-2 back and ready")
	wg.Wait()
	mu.Lock()
	nAccepted := len(accepted)
	mu.Unlock()
	phase("load over: %d orders placed, %d accepted, failures %v, %d notification reads", attempts.Load(), nAccepted, failures, reads.Load())
	if reads.Load() == 0 {
		t.Error("no notification was read over mTLS")
	}
	if nAccepted < 50 {
		t.Fatalf("only %d orders accepted in %s", nAccepted, loadFor)
	}

	// Every order in the orders database ends: sagas interrupted by the kill are resumed
	// by the restarted replica.
	deadline := time.Now().Add(90 * time.Second)
	for count(ordersDB, `SELECT COUNT(*) FROM orders WHERE status NOT IN ('confirmed', 'cancelled')`) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d orders never ended", count(ordersDB, `SELECT COUNT(*) FROM orders WHERE status NOT IN ('confirmed', 'cancelled')`))
		}
		time.Sleep(250 * time.Millisecond)
	}
	phase("every order in the orders database has ended")

	// No accepted order lost: each is in every store in the state its answer said, and
	// reads back the same through the gateway.
	var confirmed, cancelled, lost int
	for _, o := range accepted {
		var status string
		err := ordersDB.ReadDB().QueryRowContext(ctx, ordersDB.Rebind(`SELECT status FROM orders WHERE id = ?`), o.id).Scan(&status)
		switch {
		case err != nil:
			t.Errorf("accepted order %s (%s): not in the orders database: %v", o.id, o.status, err)
			lost++
			continue
		case status != o.status:
			t.Errorf("accepted order %s: answered %s, stored %s", o.id, o.status, status)
			lost++
			continue
		}
		charges := count(paymentsDB, `SELECT COUNT(*) FROM payments WHERE order_id = ? AND status = 'charged'`, o.id)
		held := count(catalogDB, `SELECT COUNT(*) FROM reservations WHERE order_id = ? AND status = 'reserved'`, o.id)
		switch o.status {
		case "confirmed":
			confirmed++
			if charges != 1 || held != 1 {
				t.Errorf("confirmed order %s: %d charges, %d reservations held; want 1 and 1", o.id, charges, held)
			}
		case "cancelled":
			cancelled++
			if charges != 0 || held != 0 {
				t.Errorf("cancelled order %s: %d charges, %d reservations held; want none", o.id, charges, held)
			}
			if strings.HasPrefix(o.subject, "decline") && !strings.Contains(o.reason, "declined") {
				t.Errorf("cancelled order %s of %s: reason %q, want a decline", o.id, o.subject, o.reason)
			}
		default:
			t.Errorf("accepted order %s answered with status %q", o.id, o.status)
		}
		if !strings.HasPrefix(o.subject, "decline") && o.status != "confirmed" {
			t.Errorf("order %s of %s: %s (%s), want confirmed", o.id, o.subject, o.status, o.reason)
		}
	}
	var apiMismatch atomic.Int64
	var apiWG sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, o := range accepted {
		apiWG.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodGet, gw+"/orders/"+o.id, nil)
			req.Header.Set("Authorization", "Bearer "+tokens[o.subject])
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("GET /orders/%s: %v", o.id, err)
				apiMismatch.Add(1)
				return
			}
			defer resp.Body.Close()
			var got struct{ ID, Status string }
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&got) != nil || got.Status != o.status {
				t.Errorf("GET /orders/%s: %d %+v, want status %s", o.id, resp.StatusCode, got, o.status)
				apiMismatch.Add(1)
			}
		})
	}
	apiWG.Wait()
	phase("accepted orders checked in the orders, payments and catalog databases and through the gateway: %d confirmed, %d cancelled, %d lost, %d read back differently",
		confirmed, cancelled, lost, apiMismatch.Load())

	// Across all orders, accepted or not: nothing applied twice, stock conserved.
	allConfirmed := count(ordersDB, `SELECT COUNT(*) FROM orders WHERE status = 'confirmed'`)
	allOrders := count(ordersDB, `SELECT COUNT(*) FROM orders`)
	if dup := count(paymentsDB, `SELECT COUNT(*) FROM (SELECT order_id FROM payments GROUP BY order_id HAVING COUNT(*) > 1) d`); dup != 0 {
		t.Errorf("%d orders have more than one payment", dup)
	}
	if charged := count(paymentsDB, `SELECT COUNT(*) FROM payments WHERE status = 'charged'`); charged != allConfirmed {
		t.Errorf("%d charges for %d confirmed orders", charged, allConfirmed)
	}
	if held := count(catalogDB, `SELECT COUNT(*) FROM reservations WHERE status = 'reserved'`); held != allConfirmed {
		t.Errorf("%d reservations held for %d confirmed orders", held, allConfirmed)
	}
	// Seed stock (migrations) = stock now + what confirmed orders hold.
	heldQty := count(catalogDB, `SELECT COALESCE(SUM(i.quantity), 0) FROM reservation_items i JOIN reservations r ON r.order_id = i.order_id WHERE r.status = 'reserved'`)
	stock := count(catalogDB, `SELECT SUM(stock) FROM products`)
	if want := allConfirmed * 4; heldQty != want {
		t.Errorf("confirmed orders hold %d items, want %d (4 per order)", heldQty, want)
	}
	if stock+heldQty != stockBefore {
		t.Errorf("stock not conserved: before %d, now %d + held %d", stockBefore, stock, heldQty)
	}
	phase("orders database: %d orders, %d confirmed; %d items held, %d in stock", allOrders, allConfirmed, heldQty, stock)

	// Both events of every order reach notifications once, across the NATS node's death:
	// OrderPlaced and OrderConfirmed or OrderCancelled.
	deadline = time.Now().Add(90 * time.Second)
	for {
		n := count(notesDB, `SELECT COUNT(*) FROM notifications`)
		if n == 2*allOrders {
			break
		}
		if n > 2*allOrders || time.Now().After(deadline) {
			t.Fatalf("notifications: %d, want %d (2 per order)", n, 2*allOrders)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if bad := count(notesDB, `SELECT COUNT(*) FROM (SELECT order_id FROM notifications GROUP BY order_id HAVING COUNT(*) <> 2) d`); bad != 0 {
		t.Errorf("%d orders do not have exactly two notifications", bad)
	}
	phase("notifications: %d events recorded, 2 for each of %d orders", 2*allOrders, allOrders)

	// One order's trace, by the id its caller gave it, in Jaeger, across every service.
	traceID := randomHex(16)
	if _, _, err := place(ctx, "prod-probe", "00-"+traceID+"-"+randomHex(8)+"-01"); err != nil {
		t.Fatalf("probe order: %v", err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		services, spans, err := jg.trace(ctx, traceID)
		if err != nil {
			t.Fatal(err)
		}
		if services["gateway"] > 0 && services["orders"] > 0 && services["catalog"] > 0 && services["payments"] > 0 && services["notifications"] > 0 {
			phase("Jaeger has trace %s: %d spans from %v", traceID, spans, services)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger: trace %s has spans from %v, want gateway, orders, catalog, payments and notifications", traceID, services)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Every service's request counter rose in Prometheus, and promtool accepts every
	// instance's exposition.
	deadline = time.Now().Add(30 * time.Second)
	for {
		after := counters(ctx)
		var flat []string
		for _, job := range jobs {
			rose := false
			for inst, v := range after[job] {
				if v > before[job][inst] {
					rose = true
				}
			}
			if !rose {
				flat = append(flat, job)
			}
		}
		if len(flat) == 0 {
			phase("Prometheus: every service's svckit_requests_total rose: %v → %v", before, after)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus: the request counters of %v did not rise: %v → %v", flat, before, after)
		}
		time.Sleep(time.Second)
	}
	for _, in := range all {
		if err := promtoolCheck(ctx, "http://"+in.admin+"/metrics"); err != nil {
			t.Errorf("%s: %v", in.id, err)
		}
	}
	phase("promtool check metrics passes on all %d instances", len(all))
	if q := dns.Queries(); q == 0 {
		t.Errorf("the DNS server was never asked: orders did not find payments through DNS")
	}

	t.Logf("SUMMARY: orders placed %d, accepted %d (confirmed %d, cancelled %d), lost %d; refused during the kills %v; "+
		"orders in the database %d (%d confirmed); then 1 probe order traced; suite %s",
		attempts.Load(), len(accepted), confirmed, cancelled, lost, failures, allOrders, allConfirmed, time.Since(suiteStart).Round(time.Second))
}

// streamLeader returns the index of the node that leads stream, or 1 if no node says.
func (c *natsCluster) streamLeader(ctx context.Context, stream string) int {
	for _, m := range c.monitor {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m+"/jsz?streams=true", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		var jsz struct {
			Accounts []struct {
				Streams []struct {
					Name    string `json:"name"`
					Cluster struct {
						Leader string `json:"leader"`
					} `json:"cluster"`
				} `json:"stream_detail"`
			} `json:"account_details"`
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, a := range jsz.Accounts {
			for _, s := range a.Streams {
				if s.Name == stream && s.Cluster.Leader != "" {
					for i, p := range c.nodes {
						if p.name == s.Cluster.Leader {
							return i
						}
					}
				}
			}
		}
	}
	return 1
}
