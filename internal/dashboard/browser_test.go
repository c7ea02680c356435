//go:build integration

package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// chromiumPath is where Debian's chromium package installs the browser (.ci/run installs
// it with apt-get install -y chromium).
const chromiumPath = "/usr/bin/chromium"

// browser starts headless Chromium with a fresh profile and no network use of its own;
// page exceptions fail the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	return browserWith(t, nil, nil)
}

// browserWith is browser with more command-line options for Chromium; requests to the
// names in mapped (which its --host-resolver-rules send to loopback) count as local, and
// listen, if not nil, gets every event of the page too.
func browserWith(t *testing.T, mapped []string, listen func(ev any), extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is not installed at %s (apt-get install -y chromium): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var mu sync.Mutex
	var errs, external []string
	requests := 0
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if listen != nil {
			listen(ev)
		}
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			mu.Lock()
			d := e.ExceptionDetails
			msg := fmt.Sprintf("%s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
			if d.Exception != nil {
				msg += ": " + d.Exception.Description
			}
			errs = append(errs, msg)
			mu.Unlock()
		case *network.EventRequestWillBeSent:
			mu.Lock()
			requests++
			if !loopbackURL(e.Request.URL, mapped) {
				external = append(external, e.Request.URL)
			}
			mu.Unlock()
		}
	}))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("exception in the page: %s", e)
		}
		// The page works offline: everything it loads comes from the dashboard's address.
		for _, u := range external {
			t.Errorf("the page requested %s, beyond localhost", u)
		}
		t.Logf("%d requests from the page, %d beyond localhost", requests, len(external))
	})
	return ctx
}

// loopbackURL reports whether the page's request for u stays on this machine: a
// loopback host, a name of mapped, or a data: or blob: URL that needs no network.
func loopbackURL(u string, mapped []string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	switch p.Scheme {
	case "data", "blob":
		return true
	case "http", "https", "ws", "wss":
		h := p.Hostname()
		if h == "localhost" || slices.Contains(mapped, h) {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SVCKIT_SCREENSHOT_DIR"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// poll waits until the JavaScript expression is truthy.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func navigate(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
}

// TestBrowser opens every page of the dashboard of a running system in headless Chromium,
// checks that live data arrives, that a trace across two processes is drawn with its
// parent/child structure, that its logs are found by its trace id, and saves a screenshot
// of each page.
func TestBrowser(t *testing.T) {
	secret := dashboard.NewSecret()
	sys := startSystem(t, dashboard.WithDevToken("dev-token"), dashboard.WithSecret(secret))
	dir := screenshotDir(t)
	ctx := browser(t)
	navigate(t, ctx, dashboard.SecretURL(sys.URL, secret)) // as the developer opens it: kill and the API page work

	// Events for the Events page: a stream with a consumer that lags, and a dead-letter stream.
	nc, err := sys.NATS.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer jcancel()
	for _, cfg := range []jetstream.StreamConfig{{Name: "ORDERS", Subjects: []string{"orders.>"}}, {Name: "ORDERS_DLQ", Subjects: []string{"dlq.orders.>"}}} {
		if _, err := js.CreateStream(jctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.CreateOrUpdateConsumer(jctx, "ORDERS", jetstream.ConsumerConfig{Durable: "notifications", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if _, err := js.Publish(jctx, "orders.placed", []byte(fmt.Sprintf(`{"order":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(jctx, "dlq.orders.placed", []byte(`{"order":0,"error":"poison"}`)); err != nil {
		t.Fatal(err)
	}

	// Steady traffic while the pages are open.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if resp, err := http.Post(sys.PublicURL()+"/add", "application/json", strings.NewReader(fmt.Sprintf(`{"a":%d,"b":1}`, i))); err == nil {
				resp.Body.Close()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	base := sys.URL + "/"

	t.Run("services", func(t *testing.T) {
		navigate(t, ctx, base+"#/services")
		poll(t, ctx, "both instances running, from the status stream",
			`document.querySelectorAll('tr.instance[data-state="running"]').length === 2 && document.querySelector('#live.on')`)
		poll(t, ctx, "the relay → addsvc edge in the architecture view",
			`document.querySelector('#arch path.edge[data-from="relay"][data-to="addsvc"]')`)
		poll(t, ctx, "health badges", `document.querySelectorAll('#svc-table .badge.ok').length >= 4`)
		screenshot(t, ctx, dir, "services")
	})

	t.Run("metrics", func(t *testing.T) {
		navigate(t, ctx, base+"#/metrics")
		poll(t, ctx, "a live chart of relay Add with several points",
			`(() => { const c = document.querySelector('.chartbox[data-series="relay/http/Add"] canvas.rate'); return c && Number(c.dataset.points) >= 2; })()`)
		before := eval[int](t, ctx, `Number(document.querySelector('.chartbox[data-series="relay/http/Add"] canvas.rate').dataset.points)`)
		poll(t, ctx, "the chart to grow with the next scrape",
			fmt.Sprintf(`Number(document.querySelector('.chartbox[data-series="relay/http/Add"] canvas.rate').dataset.points) > %d`, before))
		screenshot(t, ctx, dir, "metrics")
	})

	t.Run("traces", func(t *testing.T) {
		navigate(t, ctx, base+"#/traces?service=relay")
		poll(t, ctx, "trace rows", `document.querySelectorAll('#trace-list tr.trace').length > 0`)
		if n := eval[int](t, ctx, `Array.from(document.querySelectorAll('#trace-list tr.trace')).filter(r => !r.dataset.services.split(' ').includes('relay')).length`); n != 0 {
			t.Fatalf("%d traces without relay under the service filter", n)
		}
		screenshot(t, ctx, dir, "traces")
	})

	tv := crossTrace(t, sys.URL)
	t.Run("trace waterfall", func(t *testing.T) {
		navigate(t, ctx, base+"#/trace/"+tv.ID)
		poll(t, ctx, "the waterfall with three spans", `document.querySelectorAll('#waterfall .span-row').length >= 3`)
		type row struct {
			ID, Parent, Service, Kind, Name string
			Depth                           int
		}
		rows := eval[[]row](t, ctx, `Array.from(document.querySelectorAll('#waterfall .span-row')).map(r => ({
			ID: r.dataset.spanId, Parent: r.dataset.parentId, Service: r.dataset.service, Kind: r.dataset.kind,
			Name: r.dataset.name, Depth: Number(r.dataset.depth)}))`)
		index := map[string]int{}
		for i, r := range rows {
			index[r.ID] = i
		}
		found := false
		for i, r := range rows {
			if r.Service != "addsvc" || r.Kind != "server" {
				continue
			}
			ci, ok := index[r.Parent]
			if !ok {
				continue
			}
			c := rows[ci]
			ri, ok := index[c.Parent]
			if !ok {
				continue
			}
			root := rows[ri]
			// Drawn nested: root, then its client call one level in, then addsvc's span below it.
			if c.Service == "relay" && c.Kind == "client" && root.Service == "relay" && root.Kind == "server" && root.Parent == "" &&
				root.Depth == 0 && c.Depth == 1 && r.Depth == 2 && ri < ci && ci < i {
				found = true
			}
		}
		if !found {
			t.Fatalf("waterfall rows lack relay server → relay client → addsvc server: %+v", rows)
		}
		if err := chromedp.Do(ctx, chromedp.Click(`#waterfall .span-row[data-service="addsvc"][data-kind="server"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the span's attributes", `document.querySelector('#span-detail').textContent.includes('rpc.method')`)
		screenshot(t, ctx, dir, "trace")
	})

	t.Run("shop trace with an event hop", func(t *testing.T) {
		// A shop-like trace whose event hop has a producer span (order.placed published by
		// orders, consumed by notifications), as pubsub.Bus's WithTracerProvider makes it;
		// TestBrowserShop checks the real shop's trace, whose outbox hop has none.
		spans := shopTrace(424242, time.Now())
		sys.Traces.Add(spans)
		id := spans[0].TraceID
		navigate(t, ctx, base+"#/trace/"+id)
		poll(t, ctx, "the waterfall with nine spans", `document.querySelectorAll('#waterfall .span-row').length === 9`)
		type row struct {
			ID, Parent, Service, Kind string
			Depth                     int
		}
		rows := eval[[]row](t, ctx, `Array.from(document.querySelectorAll('#waterfall .span-row')).map(r => ({
			ID: r.dataset.spanId, Parent: r.dataset.parentId, Service: r.dataset.service, Kind: r.dataset.kind, Depth: Number(r.dataset.depth)}))`)
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("%d %s %s", r.Depth, r.Service, r.Kind))
		}
		want := []string{"0 gateway server", "1 gateway client", "2 orders server", "3 orders client", "4 catalog server",
			"3 orders client", "4 payments server", "3 orders producer", "4 notifications consumer"}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("waterfall rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if rows[8].Parent != rows[7].ID {
			t.Fatalf("the consumer's parent is %s, not the producer %s", rows[8].Parent, rows[7].ID)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('#waterfall .bar.error').length`); n != 0 && n != 2 {
			t.Fatalf("%d failed spans drawn", n)
		}
		screenshot(t, ctx, dir, "trace-shop")
		navigate(t, ctx, base+"#/services")
		poll(t, ctx, "the subject between orders and notifications in the architecture view",
			`document.querySelector('#arch .node.subject[data-name="order.placed"]') &&
			 document.querySelector('#arch path.edge.publish[data-from="orders"][data-to="order.placed"]') &&
			 document.querySelector('#arch path.edge.consume[data-from="order.placed"][data-to="notifications"]') &&
			 document.querySelector('#arch path.edge.call[data-from="orders"][data-to="payments"]')`)
		screenshot(t, ctx, dir, "services-shop")
	})

	t.Run("logs of the trace", func(t *testing.T) {
		// From the trace page, follow its link to the logs filtered by its id.
		navigate(t, ctx, base+"#/trace/"+tv.ID)
		poll(t, ctx, "the logs link", `document.querySelector('#trace-logs-link')`)
		if err := chromedp.Do(ctx, chromedp.Click(`#trace-logs-link`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "log lines of both services",
			`document.querySelector('#loglines[data-loaded]') && document.querySelector('.logline[data-service="relay"]') && document.querySelector('.logline[data-service="addsvc"]')`)
		time.Sleep(1500 * time.Millisecond) // live lines of other traces would arrive now if the filter leaked
		ids := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#loglines .logline')).map(l => l.dataset.traceId)`)
		if len(ids) == 0 {
			t.Fatal("no log lines")
		}
		for _, id := range ids {
			if id != tv.ID {
				t.Fatalf("a log line of trace %q is shown in the logs of %s", id, tv.ID)
			}
		}
		if v := eval[string](t, ctx, `document.querySelector('#log-filters [name=trace_id]').value`); v != tv.ID {
			t.Fatalf("trace id filter field = %q", v)
		}
		screenshot(t, ctx, dir, "logs")
		// A log line links back to its trace.
		if err := chromedp.Do(ctx, chromedp.Click(`#loglines .logline a.tracelink`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the trace page from a log line", fmt.Sprintf(`location.hash === '#/trace/%s' && document.querySelector('#waterfall')`, tv.ID))
	})

	t.Run("live logs", func(t *testing.T) {
		navigate(t, ctx, base+"#/logs?service=relay")
		poll(t, ctx, "loaded", `document.querySelector('#loglines[data-loaded]')`)
		n := eval[int](t, ctx, `Math.max(...Array.from(document.querySelectorAll('.logline')).map(l => Number(l.dataset.seq)), 0)`)
		poll(t, ctx, "a new line over the log stream", fmt.Sprintf(`Array.from(document.querySelectorAll('.logline')).some(l => Number(l.dataset.seq) > %d)`, n))
		if bad := eval[int](t, ctx, `document.querySelectorAll('.logline:not([data-service="relay"])').length`); bad != 0 {
			t.Fatalf("%d lines of other services under the relay filter", bad)
		}
	})

	t.Run("api explorer", func(t *testing.T) {
		navigate(t, ctx, base+"#/api")
		poll(t, ctx, "relay's endpoint from the traces", `document.querySelector('#endpoints div[data-service="relay"][data-path="/add"]')`)
		poll(t, ctx, "addsvc's endpoints from its OpenAPI document",
			`document.querySelector('#endpoints div[data-service="addsvc"][data-path="/sum"]') && document.querySelector('#endpoints div[data-service="addsvc"][data-path="/concat"]')`)
		if err := chromedp.Do(ctx, chromedp.Click(`#endpoints div[data-service="relay"][data-path="/add"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the call form", `document.querySelector('#call-form textarea')`)
		if err := chromedp.Do(ctx,
			chromedp.SetValue(`#call-form textarea`, `{"a":40,"b":2}`),
			chromedp.Click(`#call-form button[type=submit]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the answer", `document.querySelector('#call-status') && document.querySelector('#call-body').textContent.includes('42')`)
		if s := eval[string](t, ctx, `document.querySelector('#call-status').textContent`); !strings.HasPrefix(s, "200") {
			t.Fatalf("status %q", s)
		}
		screenshot(t, ctx, dir, "api")
	})

	t.Run("events", func(t *testing.T) {
		navigate(t, ctx, base+"#/events")
		poll(t, ctx, "the streams", `document.querySelector('tr.stream[data-stream="ORDERS"]') && document.querySelector('tr.stream[data-stream="ORDERS_DLQ"] .badge.err')`)
		poll(t, ctx, "the consumer's lag", `document.querySelector('tr.stream[data-stream="ORDERS"] .consumer[data-consumer="notifications"]').textContent.includes('lag 3')`)
		poll(t, ctx, "recent messages", `document.querySelectorAll('#messages tr.message').length === 3`)
		screenshot(t, ctx, dir, "events")
	})

	if st := sys.Instance("relay-1").Status(); st.State != devrun.StateRunning {
		t.Fatalf("relay is %s", st.State)
	}
}
