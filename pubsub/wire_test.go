package pubsub

import (
	"context"
	"hash/fnv"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestFNV32a(t *testing.T) {
	for _, key := range []string{"", "a", "order-42", "ключ", "a much longer key with spaces and digits 0123456789"} {
		h := fnv.New32a()
		h.Write([]byte(key))
		if got, want := fnv32a(key), h.Sum32(); got != want {
			t.Errorf("fnv32a(%q) = %d, hash/fnv says %d", key, got, want)
		}
	}
}

// A fast batch encodes its messages through one reused nats.Msg: each must carry exactly
// the headers and subject that the one-message path gives it.
func TestWireEncoderMatchesEncodeHeaders(t *testing.T) {
	b := &Bus{cfg: Config{Partitions: 8}}
	at := time.Date(2026, 12, 6, 18, 0, 0, 123456789, time.UTC)
	msgs := []*Message{
		{ID: "1", Subject: "events.a", Source: "s", Time: at, Key: "k1", Data: []byte("x")},
		{ID: "2", Subject: "events.a", Source: "s", Time: at, Data: []byte("y"), Type: "t", ContentType: "text/plain"},
		{ID: "3", Subject: "events.b", Source: "s", Time: at, Key: "k1", Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-a": "1"}},
		{ID: "4", Subject: "events.a", Source: "s", Time: at, Key: "k2"},
		{ID: "5", Subject: "events.a", Source: "s", Time: at, Key: "k1"},
	}
	w := newWireEncoder(b)
	for _, m := range msgs {
		nm := w.msg(t.Context(), m, ceTime(m))
		want := encodeHeaders(m)
		got := make(nats.Header, len(nm.Header))
		for k, v := range nm.Header {
			got[k] = append([]string(nil), v...)
		}
		if !maps.EqualFunc(got, want, func(a, b []string) bool { return len(a) == 1 && len(b) == 1 && a[0] == b[0] }) {
			t.Errorf("message %s: headers %v, want %v", m.ID, got, want)
		}
		if ws := b.wireSubject(m); nm.Subject != ws {
			t.Errorf("message %s: subject %q, want %q", m.ID, nm.Subject, ws)
		}
		if string(nm.Data) != string(m.Data) {
			t.Errorf("message %s: data %q", m.ID, nm.Data)
		}
	}
}

// TestFastBatchRefusedTraced: with a tracer provider, a message of a refused fast batch
// is published again one at a time under the producer span it got in the batch: one
// span per message, and the stored message carries that span.
func TestFastBatchRefusedTraced(t *testing.T) {
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b := newFastBus(t, Config{AckTimeout: 2 * time.Second})
	b.tp = tp
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowBatchPublish = false
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	msgs := batchOf(20, "traced")
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	spans := map[string]bool{}
	for _, sp := range rec.Ended() {
		if sp.SpanKind() == trace.SpanKindProducer {
			spans[sp.SpanContext().SpanID().String()] = true
		}
	}
	if len(spans) != len(msgs) {
		t.Fatalf("%d producer spans, want one per message (%d)", len(spans), len(msgs))
	}
	stored, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	tpHeader := stored.Header.Get("traceparent")
	if len(tpHeader) != 55 || !spans[tpHeader[36:52]] {
		t.Fatalf("stored traceparent %q is not one of the producer spans", tpHeader)
	}
}
