package dashboard_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// TestCanceledIsNoError exports spans over OTLP/HTTP to devrun's collector — requests
// their client cancelled, in each way a transport reports it, and a real failure — and
// checks that the dashboard's API shows the cancelled ones as cancelled, not as errors:
// they do not match errors only, their trace is not failed.
func TestCanceledIsNoError(t *testing.T) {
	sys := storeSystem()
	collector := httptest.NewServer(sys.Traces.OTLPHandler())
	defer collector.Close()
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil)))
	defer srv.Close()

	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	num := func(k string, v int64) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
	}
	errStatus := func(msg string) *tracepb.Status {
		return &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: msg}
	}
	start := time.Now()
	for i, tc := range []struct {
		name     string
		status   *tracepb.Status
		attrs    []*commonpb.KeyValue
		canceled bool
		failed   bool
	}{
		{"svcerr kind", errStatus("orders/Get: request canceled"), []*commonpb.KeyValue{str("svckit.error.kind", "canceled")}, true, false},
		{"http 499", nil, []*commonpb.KeyValue{num("http.response.status_code", 499)}, true, false},
		{"grpc CANCELLED", errStatus("the call has ended"), []*commonpb.KeyValue{num("rpc.grpc.status_code", 1)}, true, false},
		{"rpc.response.status_code", errStatus(""), []*commonpb.KeyValue{str("rpc.response.status_code", "CANCELLED")}, true, false},
		{"context canceled", errStatus("Post \"http://x\": context canceled"), nil, true, false},
		{"failure", errStatus("payments/Charge: internal"), []*commonpb.KeyValue{str("svckit.error.kind", "internal")}, false, true},
		{"ok", nil, []*commonpb.KeyValue{num("http.response.status_code", 200)}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tid := make([]byte, 16)
			tid[0], tid[15] = 0xca, byte(i+1)
			sid := []byte{1, 2, 3, 4, 5, 6, 7, byte(i + 1)}
			req := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
				Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "orders")}},
				ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
					TraceId: tid, SpanId: sid, Name: "orders/Get", Kind: tracepb.Span_SPAN_KIND_SERVER,
					StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(start.Add(time.Millisecond).UnixNano()),
					Status: tc.status, Attributes: tc.attrs,
				}}}},
			}}}
			body, err := proto.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.Post(collector.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("export: %s", resp.Status)
			}
			id := hex.EncodeToString(tid)
			var tv dashboard.TraceView
			if code := getJSON(t, srv.URL+"/api/traces/"+id, &tv); code != http.StatusOK {
				t.Fatalf("GET trace: %d", code)
			}
			sp := tv.Spans[0]
			if sp.Canceled != tc.canceled || sp.Error != tc.failed || tv.Summary.Canceled != tc.canceled || tv.Summary.Error != tc.failed {
				t.Errorf("span canceled %v error %v, summary canceled %v error %v; want canceled %v error %v",
					sp.Canceled, sp.Error, tv.Summary.Canceled, tv.Summary.Error, tc.canceled, tc.failed)
			}
			var errs []devrun.Summary
			getJSON(t, srv.URL+"/api/traces?error=1&id="+id, &errs)
			if got := len(errs) == 1; got != tc.failed {
				t.Errorf("errors only lists it: %v, want %v", got, tc.failed)
			}
		})
	}
}

// TestEdgesOfARelayHop: the outbox relay's span ("relay SUBJECT", svckit.outbox.relay)
// between the publish span and the consumer adds no second publish edge.
func TestEdgesOfARelayHop(t *testing.T) {
	sys := storeSystem()
	start := time.Now()
	spans := shopTrace(3000, start)
	producer, consumer := spans[7], spans[8]
	relay := producer
	relay.SpanID, relay.ParentID, relay.Name = "feedfacefeedface", producer.SpanID, "relay order.placed"
	relay.Attrs = map[string]string{"messaging.system": "nats", "messaging.destination.name": "order.placed",
		"messaging.operation.type": "send", "svckit.outbox.relay": "true"}
	consumer.ParentID = relay.SpanID
	sys.Traces.Add(append(spans[:7:7], producer, relay, consumer))
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil)))
	defer srv.Close()
	var edges []dashboard.Edge
	getJSON(t, srv.URL+"/api/edges", &edges)
	got := map[string]int{}
	for _, e := range edges {
		got[e.From+">"+e.To+">"+e.Kind] = e.Count
	}
	if got["orders>order.placed>publish"] != 1 || got["order.placed>notifications>consume"] != 1 || got["orders>notifications>call"] != 0 {
		t.Errorf("edges %v: want one publish and one consume, no call", got)
	}
}

// TestEdgesOfAnOutboxRelayHop: an event added through the outbox has no publish span of
// its own; its relay span, under the span that added it, stands for the publish.
func TestEdgesOfAnOutboxRelayHop(t *testing.T) {
	sys := storeSystem()
	spans := shopTrace(3000, time.Now())
	producer, consumer := spans[7], spans[8]
	relay := producer
	relay.SpanID, relay.Name = "feedfacefeedface", "relay order.placed"
	relay.Attrs = map[string]string{"messaging.system": "nats", "messaging.destination.name": "order.placed",
		"messaging.operation.type": "send", "svckit.outbox.relay": "true"}
	consumer.ParentID = relay.SpanID
	sys.Traces.Add(append(spans[:7:7], relay, consumer))
	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil)))
	defer srv.Close()
	var edges []dashboard.Edge
	getJSON(t, srv.URL+"/api/edges", &edges)
	got := map[string]int{}
	for _, e := range edges {
		got[e.From+">"+e.To+">"+e.Kind] = e.Count
	}
	if got["orders>order.placed>publish"] != 1 || got["order.placed>notifications>consume"] != 1 || got["orders>notifications>call"] != 0 {
		t.Errorf("edges %v: want one publish and one consume, no call", got)
	}
}

// TestDescriptionOnce: a generated document's summary is its description's first
// sentence, wrapped differently and without the period; the explorer shows it once. A
// description that says more is kept.
func TestDescriptionOnce(t *testing.T) {
	doc := []byte(`{"openapi":"3.1.0","paths":{
	  "/orders/{id}":{"get":{"operationId":"GetOrder","summary":"GetOrder returns one of the caller's orders","description":"GetOrder returns one of the\ncaller's orders."}},
	  "/orders":{"get":{"operationId":"ListOrders","summary":"ListOrders lists orders","description":"ListOrders lists orders.\n\nNewest first."}}}}`)
	eps, err := dashboard.ParseOpenAPI(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 {
		t.Fatalf("%d endpoints", len(eps))
	}
	if eps[0].Path != "/orders" || eps[0].Description == "" {
		t.Errorf("ListOrders lost its longer description: %+v", eps[0])
	}
	if eps[1].Path != "/orders/{id}" || eps[1].Description != "" || eps[1].Summary == "" {
		t.Errorf("GetOrder's description repeats its summary: %+v", eps[1])
	}
}

// TestTraceHeapWithStoreSpans fills the trace store with 10,000 shop-like traces that
// carry, besides their 9 calls and event hops, the 13 store statements a real order's
// trace has since package store traces its statements (22 spans in all), and reports the
// heap they take beside the same traces without them; the store keeps its bound.
func TestTraceHeapWithStoreSpans(t *testing.T) {
	if testing.Short() {
		t.Skip("fills the trace store")
	}
	start := time.Now()
	heapOf := func(withStore bool) float64 {
		before := heapMB()
		sys := storeSystem()
		for i := range 10_000 {
			spans := shopTrace(i, start.Add(time.Duration(i)*time.Millisecond))
			if withStore {
				for j := range 13 {
					p := spans[2+j%5] // under the orders, catalog and payments spans
					spans = append(spans, devrun.Span{TraceID: p.TraceID, SpanID: fmt.Sprintf("%016x", uint64(i)<<8|uint64(0x80+j)), ParentID: p.SpanID,
						Service: p.Service, Name: "INSERT saga_steps", Kind: "client", Start: p.Start, End: p.Start.Add(80 * time.Microsecond),
						Attrs: map[string]string{"db.system.name": "sqlite", "db.system": "sqlite", "db.operation.name": "INSERT", "db.collection.name": "saga_steps"}})
				}
			}
			sys.Traces.Add(spans)
		}
		mb := heapMB() - before
		traces, spans := sys.Traces.Stats()
		if traces != 10_000 {
			t.Fatalf("%d traces kept", traces)
		}
		t.Logf("10,000 traces, %d spans: %.1f MB", spans, mb)
		runtime.KeepAlive(sys)
		return mb
	}
	without, with := heapOf(false), heapOf(true)
	t.Logf("store spans: %.1f MB → %.1f MB (×%.2f)", without, with, with/without)
}
