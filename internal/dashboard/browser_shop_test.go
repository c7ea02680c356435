//go:build integration

package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// startShop runs examples/shop under devrun with the dashboard, as `svckit dev` does, and
// returns the system once every instance is ready, with a development token for the
// gateway. opts are added to the dashboard's.
func startShop(t *testing.T, opts ...dashboard.Option) (*devrun.System, string) {
	t.Helper()
	ctx := context.Background()
	sys, err := devrun.Start(ctx, devrun.Options{
		Dir: "../../examples/shop", StateDir: t.TempDir(), Out: io.Discard, Quiet: true, Grace: 10 * time.Second,
		Handler: func(s *devrun.System) http.Handler {
			return dashboard.Handler(s, append([]dashboard.Option{dashboard.WithOpenAPIFunc(dashboard.OpenAPIFiles(s.Manifest)),
				dashboard.WithDevTokenFunc(func(context.Context) (string, error) { return s.DevToken("dev-user") })}, opts...)...)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	readyCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	tok, err := sys.DevToken("browser-test")
	if err != nil {
		t.Fatal(err)
	}
	return sys, tok
}

// TestBrowserShop runs the real shop (examples/shop) under devrun with the dashboard,
// places an order through the gateway, and checks in headless Chromium that the order's
// trace — gateway → orders → catalog and payments, and the notifications consumer of its
// events — is drawn with every span under its parent, and that filtering the logs by the
// trace id shows only that trace's lines while other orders keep arriving. It opens every
// page on the shop's live data — services and the architecture with the event hops,
// RED charts, trace search, the API explorer from the shop's OpenAPI documents (placing
// an order with the dev token), the event streams — and saves a screenshot of each.
func TestBrowserShop(t *testing.T) {
	secret := dashboard.NewSecret()
	sys, tok := startShop(t, dashboard.WithSecret(secret))
	order := func() (int, string, error) {
		req, _ := http.NewRequest("POST", sys.PublicURL()+"/orders", strings.NewReader(`{"items":[{"productId":"sku-kettle","quantity":1}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body), nil
	}
	if code, body, err := order(); err != nil || code != 200 || !strings.Contains(body, `"confirmed"`) {
		t.Fatalf("order: %d %s %v", code, body, err)
	}

	// More orders while the pages are open: live data, and lines of other traces that a
	// leaking log filter would show.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			_, _, _ = order()
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// The order's trace, once the consumer's span has arrived too.
	var traceID string
	deadline := time.Now().Add(60 * time.Second)
	for traceID == "" {
		for _, s := range sys.Traces.Query(devrun.TraceFilter{Service: "gateway", Name: "PlaceOrder"}) {
			if len(s.Services) >= 5 {
				traceID = s.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no PlaceOrder trace across the five services")
		}
		time.Sleep(200 * time.Millisecond)
	}

	dir := screenshotDir(t)
	ctx := browser(t)
	navigate(t, ctx, dashboard.SecretURL(sys.URL, secret)) // as the developer opens it: the API page may call
	navigate(t, ctx, sys.URL+"/#/trace/"+traceID)
	poll(t, ctx, "the waterfall with the five services",
		`['gateway','orders','catalog','payments','notifications'].every(s => document.querySelector('#waterfall .span-row[data-service="'+s+'"]'))`)
	type row struct {
		ID, Parent, Service, Kind string
		Depth                     int
	}
	rows := eval[[]row](t, ctx, `Array.from(document.querySelectorAll('#waterfall .span-row')).map(r => ({
		ID: r.dataset.spanId, Parent: r.dataset.parentId, Service: r.dataset.service, Kind: r.dataset.kind, Depth: Number(r.dataset.depth)}))`)
	byID := map[string]row{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	var consumerPath []string
	for i, r := range rows {
		if i == 0 {
			if r.Service != "gateway" || r.Depth != 0 || r.Parent != "" {
				t.Fatalf("the root row is %+v, want the gateway's server span", r)
			}
			continue
		}
		p, ok := byID[r.Parent]
		if !ok {
			t.Fatalf("row %+v has no parent row", r)
		}
		if r.Depth != p.Depth+1 {
			t.Fatalf("row %+v is at depth %d under a parent at depth %d", r, r.Depth, p.Depth)
		}
		if r.Service == "notifications" && r.Kind == "consumer" && consumerPath == nil {
			for a := r; ; a = byID[a.Parent] {
				consumerPath = append(consumerPath, a.Service+"/"+a.Kind)
				if a.Parent == "" {
					break
				}
			}
		}
	}
	if consumerPath == nil || !strings.Contains(strings.Join(consumerPath, " "), "orders/") {
		t.Fatalf("no notifications consumer span under the order's spans: %v", consumerPath)
	}
	t.Logf("consumer span's ancestry: %s", strings.Join(consumerPath, " ← "))
	// The services' store statements, traced by package store, each under a span of its
	// own service: the catalog's reservation, the payment, the saga's rows.
	type stmt struct{ Name, Service, ParentService string }
	stmts := eval[[]stmt](t, ctx, `Array.from(document.querySelectorAll('#waterfall .span-row')).filter(r => /^(SELECT|INSERT|UPDATE|DELETE) /.test(r.dataset.name)).map(r => ({
		Name: r.dataset.name, Service: r.dataset.service,
		ParentService: (document.querySelector('#waterfall .span-row[data-span-id="' + r.dataset.parentId + '"]') || {dataset: {}}).dataset.service || ''}))`)
	seen := map[string]bool{}
	for _, st := range stmts {
		if st.ParentService != st.Service {
			t.Errorf("statement %s of %s under a span of %q", st.Name, st.Service, st.ParentService)
		}
		seen[st.Service] = true
	}
	if !seen["catalog"] || !seen["payments"] || !seen["orders"] {
		t.Errorf("store statements of %v in the order's trace, want catalog, payments and orders: %+v", seen, stmts)
	}
	t.Logf("%d store statements in the order's trace", len(stmts))
	if err := chromedp.Do(ctx, chromedp.Click(`#waterfall .span-row[data-service="notifications"][data-kind="consumer"]`)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the consumer span's messaging attributes", `document.querySelector('#span-detail').textContent.includes('messaging.destination.name')`)
	screenshot(t, ctx, dir, "shop-trace")

	// From the trace to its log lines, and from a line back to the trace.
	if err := chromedp.Do(ctx, chromedp.Click(`#trace-logs-link`)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "log lines of the trace", `location.hash.startsWith('#/logs') && document.querySelector('#loglines[data-loaded]') && document.querySelectorAll('#loglines .logline').length > 0`)
	time.Sleep(1500 * time.Millisecond) // live lines of the orders placed meanwhile would arrive now if the filter leaked
	ids := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#loglines .logline')).map(l => l.dataset.traceId)`)
	for _, id := range ids {
		if id != traceID {
			t.Fatalf("a line of trace %q shows among the lines of %s", id, traceID)
		}
	}
	if n := len(sys.Logs.Query(devrun.LogFilter{TraceID: traceID, Limit: 5000})); len(ids) != n {
		t.Fatalf("%d lines shown, the trace has %d", len(ids), n)
	}
	if v := eval[string](t, ctx, `document.querySelector('#log-filters [name=trace_id]').value`); v != traceID {
		t.Fatalf("trace id filter field = %q", v)
	}
	services := eval[[]string](t, ctx, `Array.from(new Set(Array.from(document.querySelectorAll('#loglines .logline')).map(l => l.dataset.service)))`)
	t.Logf("%d log lines of the trace, from %v", len(ids), services)
	screenshot(t, ctx, dir, "shop-logs")
	if err := chromedp.Do(ctx, chromedp.Click(`#loglines .logline a.tracelink`)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the trace page from a log line", fmt.Sprintf(`location.hash === '#/trace/%s' && document.querySelector('#waterfall .span-row')`, traceID))

	navigate(t, ctx, sys.URL+"/#/services")
	poll(t, ctx, "the six instances running and healthy, from the status stream",
		`document.querySelectorAll('tr.instance[data-state="running"]').length === 6 && document.querySelector('#live.on') && document.querySelectorAll('#svc-table .badge.ok').length >= 12`)
	poll(t, ctx, "the calls and the event hops in the architecture view",
		`['gateway>orders','orders>catalog','orders>payments'].every(e => document.querySelector('#arch path.edge.call[data-from="'+e.split('>')[0]+'"][data-to="'+e.split('>')[1]+'"]')) &&
		 document.querySelector('#arch path.edge.publish[data-from="orders"][data-to="shop.orders.placed"]') &&
		 document.querySelector('#arch path.edge.consume[data-from="shop.orders.placed"][data-to="notifications"]') &&
		 !document.querySelector('#arch path.edge.call[data-from="orders"][data-to="notifications"]')`)
	screenshot(t, ctx, dir, "shop-services")

	navigate(t, ctx, sys.URL+"/#/metrics")
	poll(t, ctx, "a live chart of the gateway's PlaceOrder with several points",
		`(() => { const c = document.querySelector('.chartbox[data-series="gateway/http/PlaceOrder"] canvas.rate'); return c && Number(c.dataset.points) >= 2; })()`)
	before := eval[int](t, ctx, `Number(document.querySelector('.chartbox[data-series="gateway/http/PlaceOrder"] canvas.rate').dataset.points)`)
	poll(t, ctx, "the chart to grow with the next scrape",
		fmt.Sprintf(`Number(document.querySelector('.chartbox[data-series="gateway/http/PlaceOrder"] canvas.rate').dataset.points) > %d`, before))
	screenshot(t, ctx, dir, "shop-metrics")

	navigate(t, ctx, sys.URL+"/#/traces?service=payments&name=Charge")
	poll(t, ctx, "payments traces", `document.querySelectorAll('#trace-list tr.trace').length > 0`)
	if n := eval[int](t, ctx, `Array.from(document.querySelectorAll('#trace-list tr.trace')).filter(r => !r.dataset.services.split(' ').includes('payments')).length`); n != 0 {
		t.Fatalf("%d traces without payments under the service filter", n)
	}
	screenshot(t, ctx, dir, "shop-traces")
	navigate(t, ctx, sys.URL+"/#/traces?id="+traceID[:12])
	poll(t, ctx, "the trace by its id's prefix", fmt.Sprintf(`(() => { const r = document.querySelectorAll('#trace-list tr.trace'); return r.length === 1 && r[0].dataset.id === %q; })()`, traceID))

	navigate(t, ctx, sys.URL+"/#/api")
	poll(t, ctx, "the gateway's endpoints from its OpenAPI document",
		`document.querySelector('#endpoints div[data-service="gateway"][data-method="POST"][data-path="/orders"]') &&
		 document.querySelector('#endpoints div[data-service="gateway"][data-method="GET"][data-path="/products"]') &&
		 document.querySelector('#endpoints div[data-service="payments"][data-method="POST"][data-path="/payments/charge"]')`)
	if err := chromedp.Do(ctx, chromedp.Click(`#endpoints div[data-service="gateway"][data-method="POST"][data-path="/orders"]`)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the call form", `document.querySelector('#call-form textarea')`)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(`#call-form textarea`, `{"items":[{"productId":"sku-kettle","quantity":1}]}`),
		chromedp.Click(`#call-form button[type=submit]`)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the order placed with the dev token", `document.querySelector('#call-status') && document.querySelector('#call-body').textContent.includes('confirmed')`)
	if s := eval[string](t, ctx, `document.querySelector('#call-status').textContent`); !strings.HasPrefix(s, "200") {
		t.Fatalf("status %q", s)
	}
	screenshot(t, ctx, dir, "shop-api")

	navigate(t, ctx, sys.URL+"/#/events")
	poll(t, ctx, "the shop's stream with its consumer and the dead-letter stream",
		`document.querySelector('tr.stream[data-stream="SHOP"] .consumer[data-consumer^="notifications"]') && document.querySelector('tr.stream[data-stream="SHOP_DLQ"] .badge.err')`)
	poll(t, ctx, "recent order events linked to their traces",
		`Array.from(document.querySelectorAll('#messages tr.message')).some(r => r.textContent.includes('shop.orders.placed') && r.querySelector('a[href^="#/trace/"]'))`)
	screenshot(t, ctx, dir, "shop-events")
}
