package pubsub_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
)

func newBus(t testing.TB, opts ...pubsub.Option) *pubsub.Bus {
	t.Helper()
	ctx := context.Background()
	srv, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	b, err := pubsub.New(ctx, nc, pubsub.Config{Source: "mw-test"}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()); nc.Close() })
	return b
}

func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// TestTracingParentChild publishes inside a span through a bus with a tracer provider:
// the producer span is a child of the caller's span, and the consumer span a child of
// the producer span, in the same trace.
func TestTracingParentChild(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b := newBus(t, pubsub.WithTracerProvider(tp))
	ctx := context.Background()
	inHandler := make(chan trace.SpanContext, 1)
	sub, err := b.Subscribe(ctx, "events.traced", "g", func(ctx context.Context, m *pubsub.Message) error {
		inHandler <- trace.SpanContextFromContext(ctx)
		return nil
	}, pubsub.WithMiddleware(pubsub.Tracing(tp)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	pctx, root := tp.Tracer("test").Start(ctx, "request")
	if err := b.Publish(pctx, &pubsub.Message{Subject: "events.traced"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	handlerSpan := wait(t, inHandler)
	sub.Stop(ctx)
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	prod, cons := spans["publish events.traced"], spans["process events.traced"]
	if prod == nil || cons == nil {
		t.Fatalf("spans %v", spans)
	}
	checks := []struct {
		name         string
		span         sdktrace.ReadOnlySpan
		parent       trace.SpanID
		kind         trace.SpanKind
		wantTraceOfR bool
	}{
		{"producer", prod, root.SpanContext().SpanID(), trace.SpanKindProducer, true},
		{"consumer", cons, prod.SpanContext().SpanID(), trace.SpanKindConsumer, true},
	}
	for _, c := range checks {
		if c.span.Parent().SpanID() != c.parent || c.span.SpanKind() != c.kind || c.span.SpanContext().TraceID() != root.SpanContext().TraceID() {
			t.Errorf("%s span: parent %s kind %s trace %s", c.name, c.span.Parent().SpanID(), c.span.SpanKind(), c.span.SpanContext().TraceID())
		}
	}
	if handlerSpan.SpanID() != cons.SpanContext().SpanID() {
		t.Error("the handler's context does not carry the consumer span")
	}
}

// TestMiddleware runs handlers that panic, time out and fail through the default
// middleware, and checks retries, the log and the metrics.
func TestMiddleware(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	var logBuf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	m, err := pubsub.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubsub.NewMetrics(reg); err != nil { // registering twice reuses the collectors
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// first is the handler's behaviour on the first attempt; the second succeeds.
		first   func(ctx context.Context) error
		wantLog string
	}{
		{"panic", func(ctx context.Context) error { panic("kaboom") }, "kaboom"},
		{"timeout", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, "deadline exceeded"},
		{"error", func(ctx context.Context) error { return errors.New("db down") }, "db down"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subject := "events.mw." + tc.name
			done := make(chan int, 1)
			sub, err := b.Subscribe(ctx, subject, "mw", func(ctx context.Context, msg *pubsub.Message) error {
				if msg.Attempt == 1 {
					return tc.first(ctx)
				}
				done <- msg.Attempt
				return nil
			}, pubsub.Backoff(time.Millisecond), pubsub.WithMiddleware(pubsub.Default(logger, nil, m, 50*time.Millisecond)...))
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Stop(ctx)
			if err := b.Publish(ctx, &pubsub.Message{Subject: subject}); err != nil {
				t.Fatal(err)
			}
			if got := wait(t, done); got != 2 {
				t.Fatalf("succeeded at attempt %d", got)
			}
			sub.Stop(ctx)
			if !strings.Contains(logBuf.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, logBuf.String())
			}
			for outcome, want := range map[string]float64{"ok": 1, "error": 1} {
				c, err := m.Counter(subject, "mw", outcome)
				if err != nil {
					t.Fatal(err)
				}
				var pm dto.Metric
				if err := c.Write(&pm); err != nil {
					t.Fatal(err)
				}
				if got := pm.GetCounter().GetValue(); got != want {
					t.Errorf("%s count = %v, want %v", outcome, got, want)
				}
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeadLetterAfterLostAttempt lets the last allowed attempt hang past the ack wait, as
// a crashed consumer would: the redelivery is dead-lettered without calling the handler.
func TestDeadLetterAfterLostAttempt(t *testing.T) {
	b := newBus(t)
	ctx := context.Background()
	release := make(chan struct{})
	calls := make(chan int, 10)
	sub, err := b.Subscribe(ctx, "events.hang", "hang", func(ctx context.Context, m *pubsub.Message) error {
		calls <- m.Attempt
		<-release
		return nil
	}, pubsub.MaxAttempts(1), pubsub.AckWait(300*time.Millisecond), pubsub.Concurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	dead := make(chan *pubsub.Message, 1)
	dsub, err := b.Subscribe(ctx, b.DeadLetterSubject("hang"), "reader", func(ctx context.Context, m *pubsub.Message) error {
		dead <- m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dsub.Stop(ctx)
	if err := b.Publish(ctx, &pubsub.Message{ID: "hung", Subject: "events.hang"}); err != nil {
		t.Fatal(err)
	}
	if a := wait(t, calls); a != 1 {
		t.Fatalf("first call at attempt %d", a)
	}
	m := wait(t, dead)
	close(release)
	sub.Stop(ctx)
	if m.ID != "hung" || !strings.Contains(m.Header(pubsub.HeaderDeadError), "delivered more often") {
		t.Fatalf("dead letter %s %v", m.ID, m.Headers)
	}
	select {
	case a := <-calls:
		t.Fatalf("handler called again at attempt %d", a)
	default:
	}
}
