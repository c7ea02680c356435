package devrun

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

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
		for k, v := range sp.Attrs {
			p.Attributes = append(p.Attributes, &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}})
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
