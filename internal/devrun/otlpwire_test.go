package devrun

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}
func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

// otlpRequests are export requests with every kind of field the collector reads, and
// some it skips.
func otlpRequests() map[string][]byte {
	span := func(name string, kind tracepb.Span_SpanKind, parent []byte, status *tracepb.Status, attrs ...*commonpb.KeyValue) *tracepb.Span {
		return &tracepb.Span{
			TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, byte(len(name))},
			ParentSpanId: parent, Name: name, Kind: kind, StartTimeUnixNano: 1_700_000_000_123_456_789, EndTimeUnixNano: 1_700_000_000_223_456_789,
			Attributes: attrs, Status: status, TraceState: "k=v", Flags: 0x301,
			Events: []*tracepb.Span_Event{{Name: "exception", Attributes: []*commonpb.KeyValue{kv("exception.message", str("boom"))}}},
		}
	}
	full := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("host.name", str("h")), kv("service.name", str("orders"))}},
			ScopeSpans: []*tracepb.ScopeSpans{{
				Scope: &commonpb.InstrumentationScope{Name: "svckit", Version: "1"},
				Spans: []*tracepb.Span{
					span("orders.Orders/PlaceOrder", tracepb.Span_SPAN_KIND_SERVER, nil, &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
						kv("rpc.system", str("grpc")), kv("rpc.grpc.status_code", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -3}}),
						kv("ok", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
						kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}),
						kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{str("a"), str("b")}}}}),
						kv("raw", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xff}}}),
						kv("empty", nil), kv("rpc.system", str("grpc, again"))),
					span("INSERT orders", tracepb.Span_SPAN_KIND_CLIENT, []byte{9, 9, 9, 9, 9, 9, 9, 9}, &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "constraint failed"}),
					span("cancelled", tracepb.Span_SPAN_KIND_SERVER, nil, &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "context canceled"},
						kv("rpc.grpc.status_code", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1}})),
					span("odd kind", tracepb.Span_SpanKind(42), nil, nil),
				},
			}},
		},
		{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span("no resource", tracepb.Span_SPAN_KIND_INTERNAL, nil, nil)}}}},
		{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 7}})}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span("numeric service", tracepb.Span_SPAN_KIND_PRODUCER, nil, nil)}}},
		},
	}}
	b, err := proto.Marshal(full)
	if err != nil {
		panic(err)
	}
	// A ResourceSpans whose resource follows its spans on the wire (two encodings of one
	// message merge).
	spans, _ := proto.Marshal(&tracepb.ResourceSpans{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span("early", tracepb.Span_SPAN_KIND_CONSUMER, nil, nil)}}}})
	res, _ := proto.Marshal(&tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("late"))}}})
	late := protowire.AppendTag(nil, 1, protowire.BytesType)
	late = protowire.AppendBytes(late, append(spans, res...))
	return map[string][]byte{"full": b, "resource after spans": late, "empty": nil}
}

// TestDecodeOTLPSpans: the collector's wire decoder gives what SpansFromOTLP gives for the
// decoded request, and refuses what proto.Unmarshal refuses.
func TestDecodeOTLPSpans(t *testing.T) {
	for name, b := range otlpRequests() {
		t.Run(name, func(t *testing.T) {
			var req collectortrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(b, &req); err != nil {
				t.Fatal(err)
			}
			want := SpansFromOTLP(&req)
			got, err := decodeOTLPSpans(b)
			if err != nil {
				t.Fatal(err)
			}
			spanAttrs(got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
			}
		})
	}
	full := otlpRequests()["full"]
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"truncated", full[:len(full)/2]},
		{"bad tag", []byte{0x00}},
		{"length past the end", []byte{0x0a, 0x7f, 0x01}},
		{"span name not UTF-8", func() []byte {
			b, _ := proto.Marshal(&collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{Name: "\xff"}}}}}}})
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := proto.Unmarshal(tc.b, new(collectortrace.ExportTraceServiceRequest)); err == nil {
				t.Fatal("proto.Unmarshal takes it")
			}
			if _, err := decodeOTLPSpans(tc.b); err == nil {
				t.Error("decodeOTLPSpans takes it")
			}
		})
	}
}

// FuzzDecodeOTLPSpans: no input makes the decoder panic, and wherever proto.Unmarshal
// takes the request, the decoder gives what SpansFromOTLP does.
func FuzzDecodeOTLPSpans(f *testing.F) {
	for _, b := range otlpRequests() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeOTLPSpans(b)
		var req collectortrace.ExportTraceServiceRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		if err != nil {
			t.Fatalf("proto.Unmarshal takes it, decodeOTLPSpans: %v", err)
		}
		spanAttrs(got)
		if want := SpansFromOTLP(&req); !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
		}
	})
}

func BenchmarkOTLPDecode(b *testing.B) {
	body := otlpRequests()["full"]
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req collectortrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
			_ = SpansFromOTLP(&req)
		}
	})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeOTLPSpans(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestTraceStorePairs: spans whose attributes come as decoded pairs are stored as the same
// spans with maps are, and share the maps of repeated sets (three sightings each, with a
// repeated key in one set).
func TestTraceStorePairs(t *testing.T) {
	body := otlpRequests()["full"]
	viaPairs, viaMaps := NewTraceStore(100), NewTraceStore(100)
	for range 3 {
		spans, err := decodeOTLPSpans(body)
		if err != nil {
			t.Fatal(err)
		}
		viaPairs.Add(spans)
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Fatal(err)
		}
		viaMaps.Add(SpansFromOTLP(&req))
	}
	got, ok1 := viaPairs.Get("0102030405060708090a0b0c0d0e0f10")
	want, ok2 := viaMaps.Get("0102030405060708090a0b0c0d0e0f10")
	if !ok1 || !ok2 || len(got.Spans) != 18 {
		t.Fatalf("stored %d spans (%v, %v), want 18", len(got.Spans), ok1, ok2)
	}
	got.Received, want.Received = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stored from pairs\n%+v\nfrom maps\n%+v", got, want)
	}
	for _, i := range []int{6, 8} { // with a repeated key; without
		if a, b := got.Spans[i].Attrs, got.Spans[i+6].Attrs; len(a) == 0 || reflect.ValueOf(a).UnsafePointer() != reflect.ValueOf(b).UnsafePointer() {
			t.Errorf("span %d: a repeated attribute set is not shared", i)
		}
	}
}

// BenchmarkCollect is the collector's work per export request, decoding and storing:
// through the generated types and maps, and from the wire with pairs.
func BenchmarkCollect(b *testing.B) {
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(otlpRequests()["full"], &req); err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, 512)
	for i := range bodies { // a trace per request, as a service's batch of one request's spans
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					sp.TraceId = []byte{byte(i), byte(i >> 8), 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
				}
			}
		}
		bodies[i], _ = proto.Marshal(&req)
	}
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		st := NewTraceStore(256)
		i := 0
		for b.Loop() {
			var req collectortrace.ExportTraceServiceRequest
			if err := proto.Unmarshal(bodies[i%len(bodies)], &req); err != nil {
				b.Fatal(err)
			}
			st.Add(SpansFromOTLP(&req))
			i++
		}
	})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		st := NewTraceStore(256)
		i := 0
		for b.Loop() {
			spans, err := decodeOTLPSpans(bodies[i%len(bodies)])
			if err != nil {
				b.Fatal(err)
			}
			st.Add(spans)
			i++
		}
	})
}

// TestTraceStoreCopiesDecoded: the decoder's spans are views of the request's bytes and of
// the decoder's buffers, which the handler reuses; what TraceStore.Add keeps must be copies.
// After the spans are stored, the request and the buffers are overwritten: the stored
// trace must not change. Attribute keys and values longer than the interned ones, and an
// error status, are among them.
func TestTraceStoreCopiesDecoded(t *testing.T) {
	long := strings.Repeat("k", maxInternLen+5)
	req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "svc"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: "root", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: 1, EndTimeUnixNano: 2, Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"},
				Attributes: []*commonpb.KeyValue{
					{Key: long, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: long + "v"}}},
					{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}},
				}},
			{TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{3}, 8), ParentSpanId: bytes.Repeat([]byte{4}, 8), Name: "child",
				StartTimeUnixNano: 1, EndTimeUnixNano: 2,
				Attributes: []*commonpb.KeyValue{{Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 42}}}}},
		}}},
	}}}
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	want := NewTraceStore(10)
	want.Add(SpansFromOTLP(req))
	got := NewTraceStore(10)
	for range 3 { // the second and third sightings share stored attribute sets
		var d otlpDecoder
		b := bytes.Clone(body)
		spans, err := d.decode(b)
		if err != nil {
			t.Fatal(err)
		}
		got.Add(spans)
		d.reset()
		for i := range b {
			b[i] = 0xff
		}
		for i := range d.text[:cap(d.text)] {
			d.text[:cap(d.text)][i] = 0xff
		}
	}
	id := strings.Repeat("01", 16)
	g, ok1 := got.Get(id)
	w, ok2 := want.Get(id)
	if !ok1 || !ok2 || len(g.Spans) != 6 {
		t.Fatalf("stored %d spans (%v, %v), want 6", len(g.Spans), ok1, ok2)
	}
	g.Received, w.Received = time.Time{}, time.Time{}
	g.Spans = g.Spans[:2]
	if !reflect.DeepEqual(g, w) {
		t.Errorf("stored after the request's bytes changed\n%+v\nwant\n%+v", g, w)
	}
}

// TestOTLPHandlerBounds: a body over the bound is refused with 413 before it is read
// whole, and a body that is not a request with 400; the next request is stored.
func TestOTLPHandlerBounds(t *testing.T) {
	st := NewTraceStore(10)
	h := st.OTLPHandler()
	post := func(body io.Reader, size int64) int {
		r := httptest.NewRequest(http.MethodPost, "/v1/traces", body)
		r.ContentLength = size
		r.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	big := io.LimitReader(zeros{}, maxOTLPBody+1)
	tests := []struct {
		name string
		body io.Reader
		size int64
		want int
	}{
		{"declared too large", strings.NewReader(""), maxOTLPBody + 1, http.StatusRequestEntityTooLarge},
		{"too large, length unknown", big, -1, http.StatusRequestEntityTooLarge},
		{"malformed", strings.NewReader("\xff\xff\xff"), 3, http.StatusBadRequest},
		{"good", bytes.NewReader(otlpRequests()["full"]), -1, http.StatusOK},
	}
	for _, tc := range tests {
		if got := post(tc.body, tc.size); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if n, _ := st.Stats(); n == 0 {
		t.Error("the good request was not stored")
	}
}

// zeros reads zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
