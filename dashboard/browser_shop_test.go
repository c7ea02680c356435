//go:build integration

package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/dashboard"
	"github.com/svckit/svckit/devrun"
)

// TestBrowserShop runs the real shop (examples/shop) under devrun with the dashboard,
// places an order through the gateway, and checks in headless Chromium that the order's
// trace — gateway → orders → catalog and payments, and the notifications consumer of its
// events — is drawn with every span under its parent, and that filtering the logs by the
// trace id shows only that trace's lines.
func TestBrowserShop(t *testing.T) {
	ctx0 := context.Background()
	sys, err := devrun.Start(ctx0, devrun.Options{
		Dir: "../examples/shop", StateDir: t.TempDir(), Out: io.Discard, Quiet: true, Grace: 10 * time.Second,
		Handler: func(s *devrun.System) http.Handler {
			return dashboard.Handler(s, dashboard.WithOpenAPIFunc(dashboard.OpenAPIFiles(s.Manifest)))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	readyCtx, cancel := context.WithTimeout(ctx0, 3*time.Minute)
	defer cancel()
	if err := sys.WaitReady(readyCtx); err != nil {
		t.Fatal(err)
	}
	tok, err := sys.DevToken("browser-test")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", sys.PublicURL()+"/orders", strings.NewReader(`{"items":[{"productId":"sku-kettle","quantity":1}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"confirmed"`) {
		t.Fatalf("order: %d %s", resp.StatusCode, body)
	}

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
	screenshot(t, ctx, dir, "shop-trace")

	navigate(t, ctx, sys.URL+"/#/logs?trace_id="+traceID)
	poll(t, ctx, "log lines of the trace", `document.querySelector('#loglines[data-loaded]') && document.querySelectorAll('#loglines .logline').length > 0`)
	ids := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#loglines .logline')).map(l => l.dataset.traceId)`)
	for _, id := range ids {
		if id != traceID {
			t.Fatalf("a line of trace %q shows among the lines of %s", id, traceID)
		}
	}
	services := eval[[]string](t, ctx, `Array.from(new Set(Array.from(document.querySelectorAll('#loglines .logline')).map(l => l.dataset.service)))`)
	t.Logf("%d log lines of the trace, from %v", len(ids), services)
	screenshot(t, ctx, dir, "shop-logs")
}
