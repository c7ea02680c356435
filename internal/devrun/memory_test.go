package devrun

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// shopOrder is one order of examples/shop as svckit dev saw it (testdata/memory/order.json,
// taken from the dashboard's /api/traces/{id} and /api/logs during a run of bench/shop.sh):
// its 22 spans and the 7 access-log lines the services wrote for it.
type shopOrder struct {
	Spans []Span `json:"spans"`
	Logs  []struct {
		Service  string `json:"service"`
		Instance string `json:"instance"`
		Raw      string `json:"raw"`
	} `json:"logs"`
}

func loadShopOrder(tb testing.TB) shopOrder {
	tb.Helper()
	b, err := os.ReadFile("testdata/memory/order.json")
	if err != nil {
		tb.Fatal(err)
	}
	var o shopOrder
	if err := json.Unmarshal(b, &o); err != nil {
		tb.Fatal(err)
	}
	if len(o.Spans) == 0 || len(o.Logs) == 0 {
		tb.Fatal("testdata/memory/order.json: no spans or no logs")
	}
	return o
}

// orderGen makes the spans and log lines of the shop's n-th order: the recorded order with
// fresh trace and span ids, message ids and times, as the services would write them.
type orderGen struct {
	o     shopOrder
	rng   *rand.Rand
	base  time.Time
	oldID string // the recorded trace id
}

func newOrderGen(tb testing.TB) *orderGen {
	o := loadShopOrder(tb)
	return &orderGen{o: o, rng: rand.New(rand.NewPCG(1, 2)), base: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), oldID: o.Spans[0].TraceID}
}

func (g *orderGen) hexID(n int) string {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], g.rng.Uint64())
		copy(b[i:], w[:])
	}
	return hex.EncodeToString(b)
}

// next returns the order's spans (grouped by service, as each service exports its own) and
// its log lines.
func (g *orderGen) next(n int) (map[string][]Span, [][3]string) {
	trace := g.hexID(16)
	ids := map[string]string{}
	id := func(old string) string {
		if old == "" {
			return ""
		}
		if _, ok := ids[old]; !ok {
			ids[old] = g.hexID(8)
		}
		return ids[old]
	}
	shift := g.base.Add(time.Duration(n) * 5 * time.Millisecond).Sub(g.o.Spans[0].Start)
	bySvc := map[string][]Span{}
	for _, sp := range g.o.Spans {
		c := sp
		c.TraceID, c.SpanID, c.ParentID = trace, id(sp.SpanID), id(sp.ParentID)
		c.Start, c.End = sp.Start.Add(shift), sp.End.Add(shift)
		if len(sp.Attrs) > 0 {
			c.Attrs = make(map[string]string, len(sp.Attrs))
			for k, v := range sp.Attrs {
				if k == "messaging.message.id" {
					v = g.hexID(8)
				}
				c.Attrs[k] = v
			}
		}
		bySvc[sp.Service] = append(bySvc[sp.Service], c)
	}
	var lines [][3]string
	for _, l := range g.o.Logs {
		raw := strings.ReplaceAll(l.Raw, g.oldID, trace)
		if i := strings.Index(raw, `"span_id":"`); i >= 0 {
			i += len(`"span_id":"`)
			raw = raw[:i] + g.hexID(8) + raw[i+16:]
		}
		if i := strings.Index(raw, `"time":"`); i >= 0 {
			i += len(`"time":"`)
			j := i + strings.IndexByte(raw[i:], '"')
			raw = raw[:i] + g.base.Add(time.Duration(n)*5*time.Millisecond).Format(time.RFC3339Nano) + raw[j:]
		}
		lines = append(lines, [3]string{l.Service, l.Instance, raw})
	}
	return bySvc, lines
}

// otlpBody encodes spans of one service as an OTLP/HTTP export request.
func otlpBody(tb testing.TB, service string, spans []Span) []byte {
	tb.Helper()
	ss := &tracepb.ScopeSpans{}
	for _, sp := range spans {
		tid, _ := hex.DecodeString(sp.TraceID)
		sid, _ := hex.DecodeString(sp.SpanID)
		pid, _ := hex.DecodeString(sp.ParentID)
		p := &tracepb.Span{TraceId: tid, SpanId: sid, ParentSpanId: pid, Name: sp.Name,
			Kind:              tracepb.Span_SpanKind(tracepb.Span_SpanKind_value["SPAN_KIND_"+strings.ToUpper(sp.Kind)]),
			StartTimeUnixNano: uint64(sp.Start.UnixNano()), EndTimeUnixNano: uint64(sp.End.UnixNano())}
		for _, k := range slices.Sorted(maps.Keys(sp.Attrs)) { // one order, as an SDK's call site
			p.Attributes = append(p.Attributes, &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: sp.Attrs[k]}}})
		}
		ss.Spans = append(ss.Spans, p)
	}
	req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: service}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{ss},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fillShop puts orders shop orders into the stores the way svckit dev receives them: log
// lines one by one, spans as OTLP/HTTP exports through the store's handler, each service
// exporting the spans of batch orders at a time.
func fillShop(tb testing.TB, g *orderGen, logs *LogStore, traces *TraceStore, orders, batch int) {
	tb.Helper()
	var h http.Handler
	if traces != nil {
		h = traces.OTLPHandler()
	}
	pending := map[string][]Span{}
	flush := func() {
		for svc, spans := range pending {
			if len(spans) == 0 {
				continue
			}
			r := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(otlpBody(tb, svc, spans)))
			r.Header.Set("Content-Type", "application/x-protobuf")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				tb.Fatalf("OTLP export: %d %s", w.Code, w.Body)
			}
			pending[svc] = spans[:0]
		}
	}
	for n := range orders {
		bySvc, lines := g.next(n)
		if logs != nil {
			for _, l := range lines {
				logs.Add(l[0], l[1], "stdout", l[2])
			}
		}
		if traces != nil {
			for svc, spans := range bySvc {
				pending[svc] = append(pending[svc], spans...)
			}
			if (n+1)%batch == 0 {
				flush()
			}
		}
	}
	if traces != nil {
		flush()
	}
}

// liveHeap returns the bytes of live heap objects after two collections.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkStoreMemory measures the live heap a full store holds, per item, at svckit dev's
// retention: 100,000 log lines, 10,000 traces of the shop (22 spans each). Run it with
//
//	go test -run '^$' -bench StoreMemory -benchtime 1x ./internal/devrun/
//
// and read bytes/line and bytes/trace (and bytes/span).
func BenchmarkStoreMemory(b *testing.B) {
	b.Run("logs", func(b *testing.B) {
		for b.Loop() {
			g := newOrderGen(b)
			before := liveHeap()
			logs := NewLogStore(0)
			fillShop(b, g, logs, nil, 100_000/len(g.o.Logs)+1, 1)
			after := liveHeap()
			if logs.Len() != 100_000 {
				b.Fatalf("kept %d lines, want 100,000", logs.Len())
			}
			b.ReportMetric(float64(after-before)/float64(logs.Len()), "bytes/line")
			b.ReportMetric(float64(after-before)/(1<<20), "MB")
			runtime.KeepAlive(logs)
		}
	})
	b.Run("traces", func(b *testing.B) {
		for b.Loop() {
			g := newOrderGen(b)
			before := liveHeap()
			traces := NewTraceStore(0)
			fillShop(b, g, nil, traces, 10_500, 16)
			after := liveHeap()
			n, spans := traces.Stats()
			if n != 10_000 {
				b.Fatalf("kept %d traces, want 10,000", n)
			}
			b.ReportMetric(float64(after-before)/float64(n), "bytes/trace")
			b.ReportMetric(float64(after-before)/float64(spans), "bytes/span")
			b.ReportMetric(float64(after-before)/(1<<20), "MB")
			runtime.KeepAlive(traces)
		}
	})
}

// TestTraceStoreBounds checks both bounds of a TraceStore: the count drops the oldest
// trace, the bytes drop the oldest traces too, and queries, Get and Stats agree on what is
// left.
func TestTraceStoreBounds(t *testing.T) {
	g := newOrderGen(t)
	tests := []struct {
		name       string
		limit      int
		maxBytes   int
		orders     int
		wantTraces int // 0: fewer than orders, more than 0
	}{
		{"count", 50, 0, 80, 50},
		{"under both", 100, 0, 80, 80},
		{"bytes", 1000, 64 << 10, 200, 0},
		{"bytes below one trace keeps the newest", 1000, 1, 5, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewTraceStore(tc.limit)
			s.SetMaxBytes(tc.maxBytes)
			var ids []string
			for n := range tc.orders {
				bySvc, _ := g.next(n)
				for _, svc := range []string{"notifications", "payments", "catalog", "orders", "gateway"} {
					s.Add(bySvc[svc])
				}
				ids = append(ids, bySvc["gateway"][0].TraceID)
			}
			traces, spans := s.Stats()
			if tc.wantTraces > 0 && traces != tc.wantTraces || tc.wantTraces == 0 && (traces == 0 || traces >= tc.orders) {
				t.Fatalf("kept %d traces of %d, want %d", traces, tc.orders, tc.wantTraces)
			}
			if spans != traces*len(g.o.Spans) {
				t.Errorf("spans = %d, want %d", spans, traces*len(g.o.Spans))
			}
			if tc.maxBytes > 1 && s.bytes > tc.maxBytes {
				t.Errorf("estimated bytes %d over the bound %d", s.bytes, tc.maxBytes)
			}
			// The newest traces are kept, the older ones are gone everywhere.
			sums := s.Query(TraceFilter{Limit: 100_000})
			if len(sums) != traces {
				t.Fatalf("Query returned %d traces, want %d", len(sums), traces)
			}
			for i, id := range ids {
				_, ok := s.Get(id)
				if want := i >= len(ids)-traces; ok != want {
					t.Fatalf("Get(trace %d of %d) found = %v, want %v", i, len(ids), ok, want)
				}
			}
			if sums[0].ID != ids[len(ids)-1] || sums[0].Spans != len(g.o.Spans) || sums[0].Root != "gateway/PlaceOrder" {
				t.Errorf("newest summary = %+v", sums[0])
			}
		})
	}
}

// TestTraceStoreShares checks that stored spans equal what was added, while identical
// attribute sets share one map and a span's parent id shares the parent's span id.
func TestTraceStoreShares(t *testing.T) {
	g := newOrderGen(t)
	s := NewTraceStore(0)
	var added [][]Span
	for n := range 3 {
		bySvc, _ := g.next(n)
		var all []Span
		for _, svc := range []string{"catalog", "orders", "gateway", "payments", "notifications"} {
			c := make([]Span, len(bySvc[svc]))
			for i, sp := range bySvc[svc] {
				c[i] = sp
				c[i].Attrs = maps.Clone(sp.Attrs) // the caller's maps stay the caller's
			}
			s.Add(c)
			all = append(all, bySvc[svc]...)
		}
		added = append(added, all)
	}
	for _, want := range added {
		got, ok := s.Get(want[0].TraceID)
		if !ok {
			t.Fatalf("trace %s missing", want[0].TraceID)
		}
		byID := map[string]Span{}
		for _, sp := range got.Spans {
			byID[sp.SpanID] = sp
		}
		for _, w := range want {
			g, ok := byID[w.SpanID]
			if !ok {
				t.Fatalf("span %s missing", w.SpanID)
			}
			if len(g.Attrs) == 0 && len(w.Attrs) == 0 {
				g.Attrs, w.Attrs = nil, nil // the store keeps no empty map
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("stored span\n%+v\nwant\n%+v", g, w)
			}
		}
	}
	// A set is shared from its second sighting on: the second and third traces share.
	a, _ := s.Get(added[1][0].TraceID)
	b, _ := s.Get(added[2][0].TraceID)
	shared := 0
	for i := range a.Spans {
		for j := range b.Spans {
			if a.Spans[i].Name == b.Spans[j].Name && len(a.Spans[i].Attrs) > 0 &&
				reflect.ValueOf(a.Spans[i].Attrs).UnsafePointer() == reflect.ValueOf(b.Spans[j].Attrs).UnsafePointer() {
				shared++
				break
			}
		}
		for j := range a.Spans {
			if a.Spans[j].ParentID == a.Spans[i].SpanID && unsafe.StringData(a.Spans[j].ParentID) != unsafe.StringData(a.Spans[i].SpanID) {
				t.Errorf("span %s: a child's ParentID is a copy of its id", a.Spans[i].SpanID)
			}
		}
	}
	if shared < 15 {
		t.Errorf("%d spans of a trace share their attribute map with the next trace's, want most of %d", shared, len(a.Spans))
	}
}

// TestLogStoreFields checks that a stored line comes back with the fields it was parsed
// into, whether they are pieces of the raw line or not (escaped messages, odd levels, lines
// that are not JSON), in Query and in the live stream alike.
func TestLogStoreFields(t *testing.T) {
	tests := []struct {
		name, raw                 string
		level, msg, traceID, time string // time: "" for the time the line came
	}{
		{"access log", `{"time":"2026-12-06T09:22:48.049567334Z","level":"INFO","msg":"request","trace_id":"a108b1c43fb76cee225b20faeab6610a","span_id":"42433866a8142911"}`,
			"INFO", "request", "a108b1c43fb76cee225b20faeab6610a", "2026-12-06T09:22:48.049567334Z"},
		{"escaped message", `{"time":"2026-12-06T09:22:48Z","level":"ERROR","msg":"bad \"sku\"\n\u00e9","trace_id":"0123"}`,
			"ERROR", "bad \"sku\"\né", "0123", "2026-12-06T09:22:48Z"},
		{"message elsewhere first", `{"a":"req","msg":"req","level":"WARN"}`, "WARN", "req", "", ""},
		{"custom level, other zone", `{"time":"2026-12-06T10:22:48+01:00","level":"DEBUG-4","msg":"x"}`, "DEBUG-4", "x", "", "2026-12-06T09:22:48Z"},
		{"long trace id", `{"level":"INFO","trace_id":"` + strings.Repeat("f", 300) + `"}`, "INFO", "", strings.Repeat("f", 300), ""},
		{"plain text", `panic: runtime error`, "", "", "", ""},
		{"broken JSON", `{"level":"INFO"`, "", "", "", ""},
		{"empty", ``, "", "", "", ""},
	}
	s := NewLogStore(0)
	live, stop := s.Subscribe(len(tests))
	defer stop()
	before := time.Now()
	for _, tc := range tests {
		s.Add("orders", "orders-1", "stdout", tc.raw)
	}
	got := s.Query(LogFilter{Limit: 100})
	if len(got) != len(tests) {
		t.Fatalf("Query returned %d lines, want %d", len(got), len(tests))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			streamed := <-live
			for _, l := range []LogLine{got[i], streamed} {
				if l.Seq != uint64(i) || l.Service != "orders" || l.Instance != "orders-1" || l.Stream != "stdout" || l.Raw != tc.raw {
					t.Errorf("line = %+v", l)
				}
				if l.Level != tc.level || l.Msg != tc.msg || l.TraceID != tc.traceID {
					t.Errorf("level, msg, trace id = %q, %q, %q; want %q, %q, %q", l.Level, l.Msg, l.TraceID, tc.level, tc.msg, tc.traceID)
				}
				if tc.time != "" {
					if want, _ := time.Parse(time.RFC3339Nano, tc.time); !l.Time.Equal(want) {
						t.Errorf("time = %v, want %v", l.Time, want)
					}
				} else if l.Time.Before(before.Truncate(time.Microsecond)) || time.Since(l.Time) > time.Minute {
					t.Errorf("time = %v, want the time the line came", l.Time)
				}
			}
		})
	}
	if got := s.Query(LogFilter{Level: "warn"}); len(got) != 2 {
		t.Errorf("level >= WARN: %d lines, want 2", len(got))
	}
	if got := s.Query(LogFilter{TraceID: "0123"}); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("trace id 0123: %+v", got)
	}
	if got := s.Query(LogFilter{Text: "RUNTIME"}); len(got) != 1 || got[0].Seq != 5 {
		t.Errorf("text RUNTIME: %+v", got)
	}
}

// TestLogStoreBounds checks both bounds of a LogStore: the count and the bytes drop the
// oldest lines, sequence numbers go on, and Len and Query agree.
func TestLogStoreBounds(t *testing.T) {
	line := func(i int) string {
		return fmt.Sprintf(`{"level":"INFO","msg":"line %d","pad":"%s"}`, i, strings.Repeat("x", i%7*50))
	}
	tests := []struct {
		name            string
		limit, maxBytes int
		lines           int
		wantLen         int // 0: fewer than lines, more than 0
	}{
		{"under both", 100, 0, 80, 80},
		{"count", 100, 0, 1000, 100},
		{"bytes", 1000, 20_000, 1000, 0},
		{"one line over the bytes is kept", 1000, 1, 10, 1},
		{"ring grows past its first size", 10_000, 0, 9_000, 9_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewLogStore(tc.limit)
			s.SetMaxBytes(tc.maxBytes)
			for i := range tc.lines {
				s.Add("svc", "svc-1", "stdout", line(i))
			}
			n := s.Len()
			if tc.wantLen > 0 && n != tc.wantLen || tc.wantLen == 0 && (n == 0 || n >= tc.lines) {
				t.Fatalf("Len = %d of %d lines, want %d", n, tc.lines, tc.wantLen)
			}
			if tc.maxBytes > 1 && s.bytes > tc.maxBytes {
				t.Errorf("bytes %d over the bound %d", s.bytes, tc.maxBytes)
			}
			got := s.Query(LogFilter{Limit: 100_000})
			if len(got) != n {
				t.Fatalf("Query returned %d lines, want %d", len(got), n)
			}
			for i, l := range got {
				seq := tc.lines - n + i
				if l.Seq != uint64(seq) || l.Raw != line(seq) || l.Msg != fmt.Sprint("line ", seq) {
					t.Fatalf("line %d = %+v, want seq %d", i, l, seq)
				}
			}
		})
	}
}

// TestLogStoreCompressed compares queries over a store whose older lines are compressed
// with the same filters applied to every line added, kept aside.
func TestLogStoreCompressed(t *testing.T) {
	g := newOrderGen(t)
	s := NewLogStore(8_000)
	var all []LogLine
	for n := range 1_500 {
		_, lines := g.next(n)
		for _, l := range lines {
			all = append(all, s.Add(l[0], l[1], "stdout", l[2]))
		}
		if n%100 == 0 {
			all = append(all, s.Add("svckit", "dev", "devrun", fmt.Sprintf("restarted orders-1 (%d)", n)))
		}
	}
	all = all[len(all)-s.Len():]
	if s.cold == 0 {
		t.Fatal("no line was compressed")
	}
	old, mid := all[10], all[len(all)/2]
	tests := []LogFilter{
		{},
		{Limit: 100_000},
		{TraceID: old.TraceID},
		{TraceID: mid.TraceID, Limit: 1000},
		{Text: old.TraceID[:12], Limit: 1000},
		{Text: "RESTARTED", Limit: 1000},
		{Service: "catalog", Limit: 100_000},
		{Service: "gateway", Text: `"rpc_method":"PlaceOrder"`, Limit: 3},
		{Level: "warn"},
		{Level: "info", Service: "payments", Limit: 5000},
	}
	for _, f := range tests {
		t.Run(fmt.Sprintf("%+v", f), func(t *testing.T) {
			limit := cmp.Or(f.Limit, 500)
			var want []LogLine
			for i := len(all) - 1; i >= 0 && len(want) < limit; i-- {
				if f.Match(&all[i]) {
					want = append(want, all[i])
				}
			}
			slices.Reverse(want)
			got := s.Query(f)
			if len(got) != len(want) {
				t.Fatalf("%d lines, want %d", len(got), len(want))
			}
			for i := range got {
				if !got[i].Time.Equal(want[i].Time) {
					t.Fatalf("line %d: time %v, want %v", i, got[i].Time, want[i].Time)
				}
				got[i].Time, want[i].Time = time.Time{}, time.Time{}
				if got[i] != want[i] {
					t.Fatalf("line %d:\n%+v\nwant\n%+v", i, got[i], want[i])
				}
			}
		})
	}
}

// BenchmarkLogQuery measures queries over a full store (100,000 shop lines, most of them
// compressed): the newest 500 lines, a trace's lines (a scan of every line), a service's.
func BenchmarkLogQuery(b *testing.B) {
	g := newOrderGen(b)
	s := NewLogStore(0)
	var some LogLine
	for n := range 100_000/len(g.o.Logs) + 1 {
		_, lines := g.next(n)
		for _, l := range lines {
			if ll := s.Add(l[0], l[1], "stdout", l[2]); n == 5000 {
				some = ll
			}
		}
	}
	for _, f := range []LogFilter{{}, {TraceID: some.TraceID, Limit: 1000}, {Service: "payments"}} {
		b.Run(fmt.Sprintf("%+v", f), func(b *testing.B) {
			for b.Loop() {
				if len(s.Query(f)) == 0 {
					b.Fatal("no line")
				}
			}
		})
	}
}

// TestLimitMemory checks that svckit dev's memory limit yields to GOMEMLIMIT.
func TestLimitMemory(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	tests := []struct {
		env  string
		want int64
	}{
		{"", DefaultMemoryLimit},
		{"1GiB", prev}, // the runtime's, as read at start (this test's process has none set by env)
	}
	for _, tc := range tests {
		debug.SetMemoryLimit(prev)
		got := LimitMemory(func(k string) string {
			if k == "GOMEMLIMIT" {
				return tc.env
			}
			return ""
		})
		if got != tc.want || debug.SetMemoryLimit(-1) != tc.want {
			t.Errorf("GOMEMLIMIT=%q: limit %d (in effect %d), want %d", tc.env, got, debug.SetMemoryLimit(-1), tc.want)
		}
	}
}

// TestStoresConcurrent adds lines and spans while other goroutines query, range over and
// stream them; run it with -race.
func TestStoresConcurrent(t *testing.T) {
	g := newOrderGen(t)
	logs, traces := NewLogStore(5_000), NewTraceStore(300)
	live, stop := logs.Subscribe(16)
	defer stop()
	done := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				case <-live:
				default:
				}
				switch r {
				case 0:
					for _, l := range logs.Query(LogFilter{Text: "PlaceOrder", Limit: 50}) {
						if !strings.Contains(l.Raw, "PlaceOrder") {
							t.Errorf("line without PlaceOrder: %q", l.Raw)
						}
					}
				case 1:
					for _, s := range traces.Query(TraceFilter{Service: "payments", Limit: 20}) {
						if tr, ok := traces.Get(s.ID); ok && len(tr.Spans) == 0 {
							t.Errorf("trace %s without spans", s.ID)
						}
					}
				case 2:
					traces.Range(func(tr *Trace) bool { return len(tr.Spans) > 0 })
					_ = traces.Edges()
				}
			}
		})
	}
	for n := range 1_000 {
		bySvc, lines := g.next(n)
		for _, l := range lines {
			logs.Add(l[0], l[1], "stdout", l[2])
		}
		for _, spans := range bySvc {
			traces.Add(spans)
		}
	}
	close(done)
	readers.Wait()
	if n, _ := traces.Stats(); n != 300 || logs.Len() != 5_000 {
		t.Errorf("kept %d traces and %d lines, want 300 and 5,000", n, logs.Len())
	}
}
