package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
)

// TestRelaySpans runs a relay with a tracer provider over a real SQLite store and an
// embedded NATS server: a traced event's hop is publish (Add) → relay → the consumer's
// span, each the parent of the next; an event added without a sampled span gets no relay
// span and keeps its trace context.
func TestRelaySpans(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteStore(t))
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	got := make(chan string, 3)
	h := func(ctx context.Context, m *pubsub.Message) error {
		got <- m.ID + " " + m.Header("traceparent")
		return nil
	}
	sub, err := e.bus.Subscribe(ctx, "events.relayed", "rs", h, pubsub.WithMiddleware(pubsub.Tracing(tp)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go e.ob.Relay(e.bus, outbox.RelayTracerProvider(tp)).Run(rctx)
	next := func() string {
		select {
		case s := <-got:
			return s
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
			return ""
		}
	}
	find := func(pred func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
		deadline := time.Now().Add(10 * time.Second)
		for {
			for _, s := range rec.Ended() {
				if pred(s) {
					return s
				}
			}
			if time.Now().After(deadline) {
				return nil
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	sctx, span := tp.Tracer("test").Start(ctx, "place order")
	if err := e.st.InTx(sctx, func(tx *sql.Tx) error {
		return e.ob.Add(sctx, tx, &pubsub.Message{Subject: "events.relayed", ID: "m1"})
	}); err != nil {
		t.Fatal(err)
	}
	span.End()
	header := next()
	producer := find(func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "publish events.relayed" })
	relay := find(func(s sdktrace.ReadOnlySpan) bool { return s.Name() == "relay events.relayed" })
	if producer == nil || relay == nil {
		t.Fatalf("producer span %v, relay span %v", producer, relay)
	}
	if relay.Parent().SpanID() != producer.SpanContext().SpanID() || relay.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("relay span's parent %s, want the producer span %s", relay.Parent().SpanID(), producer.SpanContext().SpanID())
	}
	if relay.SpanKind() != trace.SpanKindProducer {
		t.Errorf("relay span kind %v", relay.SpanKind())
	}
	attrs := map[string]string{}
	for _, a := range relay.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["messaging.destination.name"] != "events.relayed" || attrs["messaging.message.id"] != "m1" || attrs["svckit.outbox.relay"] != "true" || attrs["messaging.operation.type"] != "send" {
		t.Errorf("relay span attributes %v", attrs)
	}
	if want := fmt.Sprintf("m1 00-%s-%s-01", relay.SpanContext().TraceID(), relay.SpanContext().SpanID()); header != want {
		t.Fatalf("delivered %q, want the relay span's context %q", header, want)
	}
	consumer := find(func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanKind() == trace.SpanKindConsumer && s.Parent().SpanID() == relay.SpanContext().SpanID()
	})
	if consumer == nil {
		t.Fatal("no consumer span under the relay span")
	}
	if relay.StartTime().Before(producer.EndTime()) {
		t.Errorf("relay span starts %v before the producer span ends %v", relay.StartTime(), producer.EndTime())
	}

	// Unsampled and untraced events: no relay span, the context travels as it was.
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, Remote: true})
	uctx := trace.ContextWithRemoteSpanContext(ctx, remote)
	n := len(rec.Ended())
	if err := e.st.InTx(uctx, func(tx *sql.Tx) error {
		return e.ob.Add(uctx, tx, &pubsub.Message{Subject: "events.relayed", ID: "m2"})
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := next(), fmt.Sprintf("m2 00-%s-%s-00", remote.TraceID(), remote.SpanID()); got != want {
		t.Fatalf("unsampled event delivered %q, want %q", got, want)
	}
	if err := e.st.InTx(ctx, func(tx *sql.Tx) error {
		return e.ob.Add(ctx, tx, &pubsub.Message{Subject: "events.relayed", ID: "m3"})
	}); err != nil {
		t.Fatal(err)
	}
	next()
	for _, s := range rec.Ended()[n:] {
		if s.Name() == "relay events.relayed" {
			t.Fatalf("a relay span for an unsampled or untraced event (parent %s)", s.Parent().SpanID())
		}
	}
}
