package dashboard_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// shopTrace makes the spans of one shop-like order: gateway → orders → catalog and
// payments over gRPC, and an order.placed event that notifications consumes.
func shopTrace(i int, start time.Time) []devrun.Span {
	id := fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15)
	sid := func(n int) string { return fmt.Sprintf("%016x", uint64(i*16+n+1)) }
	at := func(ms float64) time.Time { return start.Add(time.Duration(ms * float64(time.Millisecond))) }
	rpc := func(sys, svc, method string) map[string]string {
		return map[string]string{"rpc.system": sys, "rpc.service": svc, "rpc.method": method}
	}
	failed := i%50 == 0
	spans := []devrun.Span{
		{SpanID: sid(0), Service: "gateway", Name: "gateway/PlaceOrder", Kind: "server", Start: at(0), End: at(12), Attrs: rpc("http", "gateway", "PlaceOrder")},
		{SpanID: sid(1), ParentID: sid(0), Service: "gateway", Name: "orders/Place", Kind: "client", Start: at(0.5), End: at(11.5), Attrs: rpc("grpc", "orders", "Place")},
		{SpanID: sid(2), ParentID: sid(1), Service: "orders", Name: "orders/Place", Kind: "server", Start: at(1), End: at(11), Attrs: rpc("grpc", "orders", "Place")},
		{SpanID: sid(3), ParentID: sid(2), Service: "orders", Name: "catalog/Reserve", Kind: "client", Start: at(1.5), End: at(4), Attrs: rpc("grpc", "catalog", "Reserve")},
		{SpanID: sid(4), ParentID: sid(3), Service: "catalog", Name: "catalog/Reserve", Kind: "server", Start: at(2), End: at(3.5), Attrs: rpc("grpc", "catalog", "Reserve")},
		{SpanID: sid(5), ParentID: sid(2), Service: "orders", Name: "payments/Charge", Kind: "client", Start: at(4.5), End: at(9), Error: failed, Attrs: rpc("grpc", "payments", "Charge")},
		{SpanID: sid(6), ParentID: sid(5), Service: "payments", Name: "payments/Charge", Kind: "server", Start: at(5), End: at(8.5), Error: failed, Attrs: rpc("grpc", "payments", "Charge")},
		{SpanID: sid(7), ParentID: sid(2), Service: "orders", Name: "publish order.placed", Kind: "producer", Start: at(9.5), End: at(10),
			Attrs: map[string]string{"messaging.system": "nats", "messaging.destination.name": "order.placed", "messaging.operation.type": "publish"}},
		{SpanID: sid(8), ParentID: sid(7), Service: "notifications", Name: "process order.placed", Kind: "consumer", Start: at(13), End: at(15),
			Attrs: map[string]string{"messaging.system": "nats", "messaging.destination.name": "order.placed", "messaging.operation.type": "process"}},
	}
	for j := range spans {
		spans[j].TraceID = id
		if spans[j].Error {
			spans[j].Status = "card declined"
		}
	}
	return spans
}

var shopServices = []string{"gateway", "orders", "catalog", "payments", "notifications"}

// shopLine makes an access-log line like those svckit services write.
func shopLine(i int, start time.Time) (service, instance, raw string) {
	svc := shopServices[i%len(shopServices)]
	level := "INFO"
	if i%97 == 0 {
		level = "ERROR"
	}
	trace := fmt.Sprintf("%032x", uint64(i/9)*0x9e3779b97f4a7c15)
	raw = fmt.Sprintf(`{"time":%q,"level":%q,"msg":"request","service":%q,"transport":"grpc","method":"Place","duration_ms":%.3f,"status":"ok","trace_id":%q,"span_id":"%016x","request_id":"req-%d"}`,
		start.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), level, svc, rand.Float64()*20, trace, i, i)
	return svc, svc + "-1", raw
}

// fill adds traces and lines numbered from first (the same numbers make the same ids).
func fill(sys *devrun.System, first, traces, lines int) {
	start := time.Now()
	for i := first; i < first+traces; i++ {
		sys.Traces.Add(shopTrace(i, start.Add(time.Duration(i)*time.Millisecond)))
	}
	for i := first * 10; i < first*10+lines; i++ {
		svc, inst, raw := shopLine(i, start)
		sys.Logs.Add(svc, inst, "stdout", raw)
	}
}

func heapMB() float64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapAlloc) / (1 << 20)
}

// TestStoresBounded fills the stores to their limits (10,000 traces of 9 spans,
// 100,000 log lines), reports the heap they take, fills them again and checks that they
// keep their limits and the heap does not grow with the second fill.
func TestStoresBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the stores")
	}
	before := heapMB()
	sys := storeSystem()
	t0 := time.Now()
	fill(sys, 0, 10_000, 0)
	tracesOnly := heapMB()
	fill(sys, 0, 0, 100_000)
	took := time.Since(t0)
	full := heapMB()
	t.Logf("heap of 10,000 traces (90,000 spans): %.1f MB; of 100,000 log lines: %.1f MB", tracesOnly-before, full-tracesOnly)
	fill(sys, 10_000, 10_000, 100_000) // every trace and line is replaced by a new one
	again := heapMB()
	traces, spans := sys.Traces.Stats()
	if traces != 10_000 || spans != 90_000 || sys.Logs.Len() != 100_000 {
		t.Fatalf("stores hold %d traces, %d spans, %d lines", traces, spans, sys.Logs.Len())
	}
	t.Logf("filled in %s", took.Round(time.Millisecond))
	t.Logf("heap: %.1f MB before, %.1f MB with 10,000 traces (90,000 spans) and 100,000 log lines, %.1f MB after refilling",
		before, full, again)
	if again > full*1.3+8 {
		t.Fatalf("heap grew from %.1f MB to %.1f MB when the stores were refilled", full, again)
	}

	// The API over full stores: filters select the right things.
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil)))
	defer srv.Close()
	var list []devrun.Summary
	getJSON(t, srv.URL+"/api/traces?service=payments&error=1&limit=20", &list)
	if len(list) != 20 {
		t.Fatalf("%d failed payments traces", len(list))
	}
	for _, s := range list {
		if !s.Error || len(s.Services) != 5 || s.Spans != 9 {
			t.Fatalf("summary %+v", s)
		}
	}
	id := list[0].ID
	var lines []devrun.LogLine
	getJSON(t, srv.URL+"/api/logs?trace_id="+id, &lines)
	for _, l := range lines {
		if l.TraceID != id {
			t.Fatalf("line of %s under the filter for %s", l.TraceID, id)
		}
	}
	var edges []dashboard.Edge
	getJSON(t, srv.URL+"/api/edges", &edges)
	want := map[string]bool{"gateway>orders>call": true, "orders>catalog>call": true, "orders>payments>call": true,
		"orders>order.placed>publish": true, "order.placed>notifications>consume": true}
	for _, e := range edges {
		delete(want, e.From+">"+e.To+">"+e.Kind)
	}
	if len(want) > 0 {
		t.Fatalf("edges %+v lack %v", edges, want)
	}
	for _, e := range edges {
		if e.From == "orders" && e.To == "notifications" {
			t.Fatalf("an event hop is drawn as a call: %+v", e)
		}
	}
	var tv dashboard.TraceView
	getJSON(t, srv.URL+"/api/traces/"+id, &tv)
	if len(tv.Spans) != 9 || !tv.Summary.Error {
		t.Fatalf("trace %+v", tv.Summary)
	}
}

var (
	fullOnce sync.Once
	fullSys  *devrun.System
	fullSrv  http.Handler
)

func fullStores(b *testing.B) (*devrun.System, http.Handler) {
	fullOnce.Do(func() {
		fullSys = storeSystem()
		fill(fullSys, 0, 10_000, 100_000)
		fullSrv = dashboard.Handler(fullSys, dashboard.WithEventSource(nil))
	})
	b.ReportAllocs()
	b.ResetTimer()
	return fullSys, fullSrv
}

// localRequest is a GET as the dashboard's listener on 127.0.0.1:7070 would receive it
// (the dashboard answers only requests addressed to its own listener).
func localRequest(url string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, url, nil)
	r.Host = "127.0.0.1:7070"
	return r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7070}))
}

func serve(b *testing.B, h http.Handler, url string) {
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, localRequest(url))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s: %d %s", url, rec.Code, rec.Body)
		}
	}
}

// Benchmarks over full stores: 10,000 traces of 9 spans and 100,000 log lines.

func BenchmarkLogsRecent(b *testing.B) {
	_, h := fullStores(b)
	serve(b, h, "/api/logs?limit=500")
}

func BenchmarkLogsByTraceID(b *testing.B) {
	sys, h := fullStores(b)
	id := sys.Logs.Query(devrun.LogFilter{Limit: 1})[0].TraceID
	serve(b, h, "/api/logs?trace_id="+id) // scans every line
}

func BenchmarkLogsByText(b *testing.B) {
	_, h := fullStores(b)
	serve(b, h, "/api/logs?text=req-12345") // scans every line
}

func BenchmarkTracesRecent(b *testing.B) {
	_, h := fullStores(b)
	serve(b, h, "/api/traces")
}

func BenchmarkTracesFiltered(b *testing.B) {
	_, h := fullStores(b)
	serve(b, h, "/api/traces?service=payments&error=1&min_ms=5")
}

func BenchmarkTraceByID(b *testing.B) {
	sys, h := fullStores(b)
	id := sys.Traces.Query(devrun.TraceFilter{Limit: 1})[0].ID
	serve(b, h, "/api/traces/"+id)
}

// BenchmarkEdges computes the architecture's edges from every stored span (the handler
// caches the result for a second; the benchmark waits that second out between rounds).
func BenchmarkEdges(b *testing.B) {
	_, h := fullStores(b)
	for b.Loop() {
		b.StopTimer()
		time.Sleep(1001 * time.Millisecond)
		b.StartTimer()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, localRequest("/api/edges"))
	}
}

// BenchmarkTraceStoreEdges is devrun's TraceStore.Edges over the same traces, for comparison.
func BenchmarkTraceStoreEdges(b *testing.B) {
	sys, _ := fullStores(b)
	for b.Loop() {
		_ = sys.Traces.Edges()
	}
}

func BenchmarkStatus(b *testing.B) {
	_, h := fullStores(b)
	serve(b, h, "/api/services")
}

// TestEdgesOfAnOutboxHop checks the architecture's edges for the event hop the shop's
// traces show: orders adds shop.orders.placed to its outbox in its server span (no
// producer span), and notifications' consumer span continues that span. The publisher is
// drawn orders → subject, the consumer subject → notifications, and the hop is no call;
// with a producer span (shopTrace) the publish is counted once, not twice.
func TestEdgesOfAnOutboxHop(t *testing.T) {
	sys := storeSystem()
	start := time.Now()
	const outboxTraces = 3
	for i := range outboxTraces {
		spans := shopTrace(1000+i, start)
		consumer := spans[8]
		consumer.ParentID = spans[2].SpanID // the orders server span, as the outbox stores it
		consumer.Name = "process shop.orders.placed"
		consumer.Attrs = map[string]string{"messaging.system": "nats", "messaging.destination.name": "shop.orders.placed", "messaging.operation.type": "process"}
		sys.Traces.Add(append(spans[:7], consumer)) // without the producer span
	}
	sys.Traces.Add(shopTrace(2000, start))
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil)))
	defer srv.Close()
	var edges []dashboard.Edge
	getJSON(t, srv.URL+"/api/edges", &edges)
	got := map[string]int{}
	for _, e := range edges {
		got[e.From+">"+e.To+">"+e.Kind] = e.Count
	}
	want := map[string]int{
		"gateway>orders>call": outboxTraces + 1, "orders>catalog>call": outboxTraces + 1, "orders>payments>call": outboxTraces + 1,
		"orders>shop.orders.placed>publish": outboxTraces, "shop.orders.placed>notifications>consume": outboxTraces,
		"orders>order.placed>publish": 1, "order.placed>notifications>consume": 1,
	}
	if len(got) != len(want) {
		t.Errorf("%d edges, want %d: %v", len(got), len(want), got)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("edge %s: count %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
}
