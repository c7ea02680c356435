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
	"github.com/nats-io/nats.go"
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

// poll waits until the JavaScript expression is truthy. A page that is still loading
// replaces its JavaScript context under the poll ("Cannot find context with specified
// id", "Execution context was destroyed"); the poll then starts again in the new one, until
// the same 45 s deadline.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
			chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil {
			return
		}
		if !contextReplaced(err) || time.Now().After(deadline) {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// contextReplaced reports whether err is DevTools saying that the JavaScript context an
// evaluation ran in went away with a navigation.
func contextReplaced(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") ||
		strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated or closed")
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
	for i := 1; i <= 2; i++ {
		if _, err := js.Publish(jctx, "orders.placed", []byte(fmt.Sprintf(`{"order":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	// The third as pubsub publishes a keyed event: on a partition subject, with its trace.
	if _, err := js.PublishMsg(jctx, &nats.Msg{Subject: "orders.placed._k.3", Data: []byte(`{"order":3,"items":[{"sku":"tea","qty":2}]}`),
		Header: nats.Header{"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}}); err != nil {
		t.Fatal(err)
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
		// Grouped per service; in each, the charts are the endpoints with traffic, the idle
		// ones only named (relay's "unmatched" series, addsvc's unused methods).
		type section struct {
			Service string
			Charts  []string
			Idle    int
		}
		secs := eval[[]section](t, ctx, `Array.from(document.querySelectorAll('#charts section.svc-metrics')).map(s => ({
			Service: s.dataset.service, Charts: Array.from(s.querySelectorAll('.chartbox')).map(b => b.dataset.series),
			Idle: s.querySelectorAll('.idle-list a').length}))`)
		services := map[string]section{}
		for _, sec := range secs {
			services[sec.Service] = sec
			for _, c := range sec.Charts {
				if !strings.HasPrefix(c, sec.Service+"/") {
					t.Errorf("chart %s in the section of %s", c, sec.Service)
				}
			}
		}
		if len(secs) != 2 || !slices.Contains(services["relay"].Charts, "relay/http/Add") || !slices.Contains(services["addsvc"].Charts, "addsvc/grpc/Sum") {
			t.Fatalf("sections %+v", secs)
		}
		if services["addsvc"].Idle == 0 || slices.Contains(services["addsvc"].Charts, "addsvc/grpc/Concat") {
			t.Errorf("addsvc's idle Concat is drawn, or its idle endpoints are not named: %+v", services["addsvc"])
		}
		// Idle endpoints on request, and the view in the URL.
		if err := chromedp.Do(ctx, chromedp.Click(`#metric-idle`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "idle charts and the URL", `location.hash.includes('idle=1') && document.querySelector('.chartbox.idle[data-series="addsvc/grpc/Concat"]')`)
		navigate(t, ctx, base+"#/metrics?series="+url.QueryEscape("relay/http/Add"))
		poll(t, ctx, "the linked view: one endpoint", `document.querySelectorAll('.chartbox').length === 1 && document.querySelector('.chartbox[data-series="relay/http/Add"]') && document.querySelector('#metric-all')`)
		navigate(t, ctx, base+"#/metrics?service=addsvc")
		poll(t, ctx, "the linked view: one service", `document.querySelector('#metric-service').value === 'addsvc' && document.querySelectorAll('section.svc-metrics').length === 1 && document.querySelector('section.svc-metrics[data-service="addsvc"]')`)
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
		// A call that skips columns (gateway → notifications) and a long subject name.
		now := time.Now()
		extra := shopTrace(525252, now)
		extra[7].Attrs = map[string]string{"messaging.system": "nats", "messaging.destination.name": longSubject, "messaging.operation.type": "publish"}
		extra[8].Attrs = map[string]string{"messaging.system": "nats", "messaging.destination.name": longSubject, "messaging.operation.type": "process"}
		direct := devrun.Span{TraceID: extra[0].TraceID, SpanID: "00000000000000aa", ParentID: extra[0].SpanID, Service: "notifications",
			Name: "notifications/Ping", Kind: "server", Start: now, End: now.Add(time.Millisecond)}
		sys.Traces.Add(append(extra, direct))
		poll(t, ctx, "the long edge and the long subject", `document.querySelector('#arch path.edge.call[data-from="gateway"][data-to="notifications"]') &&
			document.querySelector('#arch .node.subject[data-name="`+longSubject+`"]')`)
		if problems := eval[[]string](t, ctx, archProblems); len(problems) > 0 {
			t.Errorf("architecture layout:\n%s", strings.Join(problems, "\n"))
		}
		screenshot(t, ctx, dir, "services-shop")
	})

	t.Run("cancelled request, store and relay spans", func(t *testing.T) {
		now := time.Now()
		spans := shopTrace(626262, now)
		at := func(ms float64) time.Time { return now.Add(time.Duration(ms * float64(time.Millisecond))) }
		// The client went away: the gateway's span is cancelled, which is no error.
		spans[0].Canceled, spans[0].Status = true, "request canceled"
		// Bodies, as a service that opted in to them in development would record them.
		spans[0].Attrs["http.request.body"] = `{"items":[{"sku":"tea","qty":2}]}`
		spans[0].Attrs["http.response.body"] = `not json`
		db := devrun.Span{TraceID: spans[0].TraceID, SpanID: "00000000000000bb", ParentID: spans[2].SpanID, Service: "orders",
			Name: "INSERT outbox", Kind: "client", Start: at(9.2), End: at(9.4),
			Attrs: map[string]string{"db.system.name": "sqlite", "db.operation.name": "INSERT", "db.collection.name": "outbox"}}
		relay := devrun.Span{TraceID: spans[0].TraceID, SpanID: "00000000000000cc", ParentID: spans[7].SpanID, Service: "orders",
			Name: "relay order.placed", Kind: "producer", Start: at(11), End: at(12.5),
			Attrs: map[string]string{"messaging.system": "nats", "messaging.destination.name": "order.placed", "messaging.operation.type": "send", "svckit.outbox.relay": "true"}}
		spans[8].ParentID = relay.SpanID
		sys.Traces.Add(append(spans, db, relay))
		id := spans[0].TraceID
		navigate(t, ctx, base+"#/trace/"+id)
		poll(t, ctx, "the waterfall with eleven spans", `document.querySelectorAll('#waterfall .span-row').length === 11`)
		type row struct {
			Name  string
			Depth int
		}
		rows := eval[[]row](t, ctx, `Array.from(document.querySelectorAll('#waterfall .span-row')).map(r => ({Name: r.dataset.name, Depth: Number(r.dataset.depth)}))`)
		depth := map[string]int{}
		for _, r := range rows {
			depth[r.Name] = r.Depth
		}
		if depth["INSERT outbox"] != 3 || depth["publish order.placed"] != 3 || depth["relay order.placed"] != 4 || depth["process order.placed"] != 5 {
			t.Errorf("store and relay spans not nested as sent: %+v", rows)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll('#waterfall .bar.error, #trace .badge.err').length`); n != 0 {
			t.Errorf("%d error marks on a trace with only a cancelled request", n)
		}
		poll(t, ctx, "the cancelled badges", `document.querySelector('#waterfall .span-row[data-name="gateway/PlaceOrder"] .badge.cancel') && document.querySelector('#waterfall .bar.canceled')`)
		if err := chromedp.Do(ctx, chromedp.Click(`#waterfall .span-row[data-name="gateway/PlaceOrder"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the span's detail says cancelled", `document.querySelector('#span-detail').textContent.includes('cancelled by its client')`)
		poll(t, ctx, "the bodies as blocks, JSON indented", `document.querySelector('#span-detail .span-body[data-attr="http.request.body"] pre')?.textContent.includes('\n  "items"') &&
			document.querySelector('#span-detail .span-body[data-attr="http.response.body"] pre')?.textContent === 'not json'`)
		if err := chromedp.Do(ctx, chromedp.Click(`#waterfall .span-row[data-name="INSERT outbox"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the store span's attributes, its duration in human units", `document.querySelector('#span-detail').textContent.includes('db.operation.name') &&
			document.querySelector('#span-detail').textContent.includes('200 µs')`)
		screenshot(t, ctx, dir, "trace-cancelled")
		navigate(t, ctx, base+"#/traces?error=1&id="+id[:20])
		poll(t, ctx, "no trace among the errors", `document.querySelector('#trace-list') && document.querySelector('#trace-list').textContent.includes('No traces match')`)
		navigate(t, ctx, base+"#/traces?id="+id[:20])
		poll(t, ctx, "the trace listed as cancelled", `document.querySelector('#trace-list tr.trace .badge.cancel')`)
	})

	t.Run("durations in logs", func(t *testing.T) {
		for _, l := range []string{
			`{"level":"INFO","msg":"durtest ns","duration":103478540}`,
			`{"level":"INFO","msg":"durtest ms","duration_ms":12.5}`,
			`{"level":"INFO","msg":"durtest go","elapsed":"1.5s"}`,
			`time=2026-12-06T08:00:00Z level=INFO msg="durtest text" duration=2500000 status=200`,
		} {
			sys.Logs.Add("relay", "relay-1", "stdout", l)
		}
		navigate(t, ctx, base+"#/logs?text=durtest")
		poll(t, ctx, "the four lines", `document.querySelector('#loglines[data-loaded]') && document.querySelectorAll('#loglines .logline').length === 4`)
		text := eval[string](t, ctx, `document.querySelector('#loglines').textContent`)
		for _, want := range []string{"duration=103 ms", "duration_ms=12.5 ms", "elapsed=1.50 s", "duration=2.50 ms status=200"} {
			if !strings.Contains(text, want) {
				t.Errorf("logs lack %q:\n%s", want, text)
			}
		}
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
		// A generated document's summary and description say the same: shown once.
		if err := chromedp.Do(ctx, chromedp.Click(`#endpoints div[data-service="addsvc"][data-path="/sum"]`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "addsvc's Sum form", `document.querySelector('#call h2') && document.querySelector('#call h2').textContent.includes('Sum')`)
		if n := eval[int](t, ctx, `document.querySelector('#call').textContent.split('Sum returns a + b').length - 1`); n != 1 {
			t.Errorf("Sum's description shown %d times", n)
		}
	})

	t.Run("events", func(t *testing.T) {
		navigate(t, ctx, base+"#/events")
		poll(t, ctx, "the streams", `document.querySelector('tr.stream[data-stream="ORDERS"]') && document.querySelector('tr.stream[data-stream="ORDERS_DLQ"] .badge.err')`)
		poll(t, ctx, "the consumer's lag", `document.querySelector('tr.stream[data-stream="ORDERS"] .consumer[data-consumer="notifications"]').textContent.includes('lag 3')`)
		poll(t, ctx, "recent messages", `document.querySelectorAll('#messages tr.message').length === 3`)
		// One line each; the keyed message under its logical subject, linked to its trace.
		if hgt := eval[float64](t, ctx, `Math.max(...Array.from(document.querySelectorAll('#messages tr.message')).map(r => r.getBoundingClientRect().height))`); hgt > 30 {
			t.Errorf("a message row is %.0f px tall", hgt)
		}
		keyed := `document.querySelector('#messages tr.message[data-seq="3"]')`
		if s := eval[string](t, ctx, keyed+`.children[2].textContent`); s != "orders.placed" {
			t.Errorf("the keyed message's subject is shown as %q", s)
		}
		if eval[string](t, ctx, keyed+`.querySelector('a').getAttribute('href')`) != "#/trace/0af7651916cd43dd8448eb211c80319c" {
			t.Error("the keyed message does not link to its trace")
		}
		if err := chromedp.Do(ctx, chromedp.Click(`#messages tr.message[data-seq="3"] td.payload`)); err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "the expanded message: headers, stored subject, indented payload", keyed+`.nextElementSibling.hidden === false &&
			`+keyed+`.nextElementSibling.textContent.includes('Traceparent') && `+keyed+`.nextElementSibling.textContent.includes('orders.placed._k.3') &&
			`+keyed+`.nextElementSibling.querySelector('pre').textContent.includes('\n  "items"')`)
		screenshot(t, ctx, dir, "events")
	})

	if st := sys.Instance("relay-1").Status(); st.State != devrun.StateRunning {
		t.Fatalf("relay is %s", st.State)
	}
}

// longSubject is a subject name longer than the architecture's widest box.
const longSubject = "shop.orders.placed.with.a.rather.long.subject.name.for.the.layout.v2"

// archProblems lists what is wrong with the drawn architecture: count labels that overlap
// each other or a box, boxes that overlap, edges that pass through a box other than their
// ends, names that overflow their box.
const archProblems = `(() => {
  const svg = document.querySelector('#arch svg');
  const boxes = Array.from(svg.querySelectorAll('g.node')).map(g => ({name: g.dataset.name, r: g.querySelector('rect.box').getBBox()}));
  const labels = Array.from(svg.querySelectorAll('text.elabel')).filter(t => t.textContent).map(t => ({edge: t.dataset.edge, r: t.getBBox()}));
  const hit = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  const out = [];
  labels.forEach((a, i) => {
    for (const b of labels.slice(i + 1)) if (hit(a.r, b.r)) out.push('label ' + a.edge + ' overlaps label ' + b.edge);
    for (const b of boxes) if (hit(a.r, b.r)) out.push('label ' + a.edge + ' overlaps box ' + b.name);
  });
  boxes.forEach((a, i) => { for (const b of boxes.slice(i + 1)) if (hit(a.r, b.r)) out.push('box ' + a.name + ' overlaps box ' + b.name); });
  for (const p of svg.querySelectorAll('path.edge')) {
    const len = p.getTotalLength();
    for (let d = 2; d < len - 2; d += 2) {
      const pt = p.getPointAtLength(d);
      const b = boxes.find(b => b.name !== p.dataset.from && b.name !== p.dataset.to &&
        pt.x > b.r.x + 1 && pt.x < b.r.x + b.r.width - 1 && pt.y > b.r.y + 1 && pt.y < b.r.y + b.r.height - 1);
      if (b) { out.push('edge ' + p.dataset.from + ' > ' + p.dataset.to + ' crosses box ' + b.name); break; }
    }
  }
  for (const g of svg.querySelectorAll('g.node')) {
    const r = g.querySelector('rect.box').getBBox(), tb = g.querySelector('text').getBBox();
    if (tb.x + tb.width > r.x + r.width) out.push('the name of ' + g.dataset.name + ' overflows its box');
  }
  return Array.from(new Set(out));
})()`
