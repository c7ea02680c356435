package devrun

import (
	"bytes"
	"cmp"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// rawSetsBody is an export request of spans whose attribute sets repeat from export to
// export, for trace id n: plain sets, a set that says the span was cancelled, a shared
// set on a span whose status says so, a repeated key, numbers, and a set whose fields are
// not one run on the wire (one of them after the status).
func rawSetsBody(t *testing.T, n byte) []byte {
	t.Helper()
	tid := []byte{n, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	span := func(id byte, name string, status *tracepb.Status, attrs ...*commonpb.KeyValue) *tracepb.Span {
		return &tracepb.Span{TraceId: tid, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, id}, Name: name, Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: 1_700_000_000_000_000_000 + uint64(id), EndTimeUnixNano: 1_700_000_000_100_000_000, Attributes: attrs, Status: status}
	}
	i64 := func(v int64) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}
	}
	req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("orders"))}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			span(1, "plain", &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}, kv("rpc.method", str("orders/PlaceOrder")), kv("rpc.system.name", str("grpc"))),
			span(2, "cancelled by attrs", &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"}, kv("error.type", str("canceled")), kv("k", str("v"))),
			span(3, "cancelled by status", &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "context canceled"}, kv("db.system", str("sqlite"))),
			span(4, "failed", &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "constraint failed"}, kv("db.system", str("sqlite"))),
			span(5, "repeated key", nil, kv("a", str("1")), kv("a", str("2"))),
			span(6, "numbers", nil, kv("n", i64(5)), kv("s", str("x")), kv("rpc.grpc.status_code", i64(1))),
			span(7, "same set, other order", nil, kv("rpc.system.name", str("grpc")), kv("rpc.method", str("orders/PlaceOrder"))),
		}}},
	}}}
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	// A span with one attribute before its status and one after it, in a ResourceSpans of
	// its own (the request's field repeated).
	sp, err := proto.Marshal(span(8, "split", nil, kv("first", str("1"))))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := proto.Marshal(kv("second", str("2")))
	sp = protowire.AppendTag(sp, fieldSpanStatus, protowire.BytesType)
	sp = protowire.AppendBytes(sp, nil)
	sp = protowire.AppendTag(sp, fieldSpanAttributes, protowire.BytesType)
	sp = protowire.AppendBytes(sp, after)
	scope := protowire.AppendBytes(protowire.AppendTag(nil, fieldScopeSpansSpans, protowire.BytesType), sp)
	rs := protowire.AppendBytes(protowire.AppendTag(nil, fieldResourceSpansScopeSpans, protowire.BytesType), scope)
	b = protowire.AppendTag(b, fieldRequestResourceSpans, protowire.BytesType)
	return protowire.AppendBytes(b, rs)
}

// TestOTLPRawSets: spans whose attributes' bytes are those of a set the store shares get
// the store's map without being decoded, and the store keeps exactly what SpansFromOTLP
// gives for every export, the first (decoded) as the later (found by their bytes) ones —
// attributes, cancellation by attribute or by status, a repeated key, numbers; a set whose
// fields are split on the wire is decoded every time.
func TestOTLPRawSets(t *testing.T) {
	s := NewTraceStore(0)
	h := s.OTLPHandler()
	byID := func(a, b Span) int { return cmp.Compare(a.SpanID, b.SpanID) }
	for n := range byte(6) {
		body := rawSetsBody(t, n)
		if n >= 3 { // the sets are shared from their second sighting, found by bytes from the third
			d := otlpDecoder{store: s}
			spans, err := d.decode(body)
			if err != nil {
				t.Fatal(err)
			}
			shared := map[string]bool{}
			for i := range spans {
				shared[spans[i].Name] = spans[i].shared
			}
			want := map[string]bool{"plain": true, "cancelled by attrs": true, "cancelled by status": true, "failed": true,
				"repeated key": true, "numbers": true, "same set, other order": true, "split": false}
			if !reflect.DeepEqual(shared, want) {
				t.Errorf("export %d: found by their bytes %v; want %v", n, shared, want)
			}
			d.reset()
		}
		r := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("export %d: %d %s", n, w.Code, w.Body)
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Fatal(err)
		}
		want := SpansFromOTLP(&req)
		slices.SortFunc(want, byID)
		tr, ok := s.Get(want[0].TraceID)
		if !ok {
			t.Fatalf("export %d: trace %s not stored", n, want[0].TraceID)
		}
		got := tr.Spans
		slices.SortFunc(got, byID)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("export %d: stored\n%+v\nwant\n%+v", n, got, want)
		}
	}
}
