package observe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// gateExporter records exported batches; while gate is non-nil, each export first reports
// on entered and then waits for gate to close.
type gateExporter struct {
	mu       sync.Mutex
	batches  [][]string
	entered  chan struct{}
	gate     chan struct{}
	err      error
	shutdown bool
}

func (g *gateExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if g.gate != nil {
		g.entered <- struct{}{}
		<-g.gate
	}
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.batches = append(g.batches, names)
	return g.err
}

func (g *gateExporter) Shutdown(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shutdown = true
	return nil
}

func (g *gateExporter) exported() (batches [][]string, names []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.batches {
		names = append(names, b...)
	}
	return append([][]string(nil), g.batches...), names
}

// endSpans ends n spans named prefix0, prefix1, … through a tracer provider using p.
func endSpans(tp *sdktrace.TracerProvider, prefix string, n int) {
	tr := tp.Tracer("test")
	for i := range n {
		_, s := tr.Start(context.Background(), fmt.Sprintf("%s%d", prefix, i))
		s.End()
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newBatchTP(p *BatchProcessor, sampler sdktrace.Sampler) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(p))
}

func TestBatchProcessorFullBatchExportsAtOnce(t *testing.T) {
	exp := &gateExporter{}
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: time.Hour, MaxExportBatchSize: 4})
	tp := newBatchTP(p, sdktrace.AlwaysSample())
	defer tp.Shutdown(context.Background())

	endSpans(tp, "a", 3)
	time.Sleep(50 * time.Millisecond)
	if b, _ := exp.exported(); len(b) != 0 {
		t.Fatalf("a partial batch was exported before its delay: %v", b)
	}
	endSpans(tp, "b", 1)
	waitFor(t, "the full batch", func() bool { b, _ := exp.exported(); return len(b) == 1 })
	b, _ := exp.exported()
	if got := strings.Join(b[0], ","); got != "a0,a1,a2,b0" {
		t.Fatalf("batch = %s, want a0,a1,a2,b0", got)
	}
}

func TestBatchProcessorScheduleDelay(t *testing.T) {
	exp := &gateExporter{}
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: 20 * time.Millisecond})
	tp := newBatchTP(p, sdktrace.AlwaysSample())
	defer tp.Shutdown(context.Background())
	endSpans(tp, "x", 1)
	waitFor(t, "the delayed export", func() bool { _, n := exp.exported(); return len(n) == 1 })
}

func TestBatchProcessorForceFlushKeepsOrderAndSplitsBatches(t *testing.T) {
	exp := &gateExporter{}
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: time.Hour, MaxExportBatchSize: 3, MaxQueueSize: 100})
	tp := newBatchTP(p, sdktrace.AlwaysSample())
	defer tp.Shutdown(context.Background())
	endSpans(tp, "s", 10)
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	batches, names := exp.exported()
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("s%d", i))
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("exported %v, want %v", names, want)
	}
	for _, b := range batches {
		if len(b) > 3 {
			t.Fatalf("batch of %d spans, max is 3: %v", len(b), batches)
		}
	}
}

func TestBatchProcessorDropsWhenFullWithoutBlocking(t *testing.T) {
	exp := &gateExporter{entered: make(chan struct{}, 10), gate: make(chan struct{})}
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: time.Hour, MaxExportBatchSize: 8, MaxQueueSize: 8})
	tp := newBatchTP(p, sdktrace.AlwaysSample())

	endSpans(tp, "first", 8) // a full batch: the exporter takes it and blocks
	<-exp.entered
	done := make(chan struct{})
	go func() { endSpans(tp, "second", 12); close(done) }() // 8 queued, 4 dropped
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ending spans blocked while the exporter was busy")
	}
	if d := p.Dropped(); d != 4 {
		t.Fatalf("dropped %d, want 4", d)
	}
	close(exp.gate) // this and later exports go through
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, names := exp.exported()
	if len(names) != 16 {
		t.Fatalf("exported %d spans, want 16 (8 + 8 queued): %v", len(names), names)
	}
}

func TestBatchProcessorSkipsUnsampled(t *testing.T) {
	exp := &gateExporter{}
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: time.Hour})
	tp := newBatchTP(p, sdktrace.NeverSample())
	endSpans(tp, "u", 5)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, names := exp.exported(); len(names) != 0 {
		t.Fatalf("unsampled spans exported: %v", names)
	}
}

func TestBatchProcessorShutdown(t *testing.T) {
	exp := &gateExporter{}
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: time.Hour})
	tp := newBatchTP(p, sdktrace.AlwaysSample())
	endSpans(tp, "q", 5)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, names := exp.exported()
	if len(names) != 5 || !exp.shutdown {
		t.Fatalf("after shutdown: exported %v, exporter shut down %v; want 5 spans and true", names, exp.shutdown)
	}
	// Spans ended after shutdown go nowhere; flushing and shutting down again are no-ops.
	p.OnEnd(tracetest.SpanStub{Name: "late"}.Snapshot())
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, names := exp.exported(); len(names) != 5 {
		t.Fatalf("exported after shutdown: %v", names)
	}
}

func TestBatchProcessorShutdownHonoursContext(t *testing.T) {
	exp := &gateExporter{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	defer close(exp.gate)
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: time.Hour, MaxExportBatchSize: 1})
	tp := newBatchTP(p, sdktrace.AlwaysSample())
	endSpans(tp, "b", 1)
	<-exp.entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck exporter = %v, want deadline exceeded", err)
	}
}

func TestBatchProcessorForceFlushReportsExportError(t *testing.T) {
	exp := &gateExporter{err: errors.New("collector down")}
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: time.Hour})
	tp := newBatchTP(p, sdktrace.AlwaysSample())
	defer tp.Shutdown(context.Background())
	endSpans(tp, "e", 2)
	err := p.ForceFlush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "collector down") || !strings.Contains(err.Error(), "2 spans") {
		t.Fatalf("ForceFlush = %v, want the export error naming 2 spans", err)
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatalf("second ForceFlush with nothing exported = %v, want nil", err)
	}
}

func TestBatchProcessorConcurrentSpansExportedOnce(t *testing.T) {
	exp := &gateExporter{}
	const workers, each = 8, 2000
	p := NewBatchProcessor(exp, BatchOptions{ScheduleDelay: 5 * time.Millisecond, MaxQueueSize: workers * each, MaxExportBatchSize: 64})
	tp := newBatchTP(p, sdktrace.AlwaysSample())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { endSpans(tp, fmt.Sprintf("w%d-", w), each) })
	}
	wg.Wait()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, names := exp.exported()
	seen := make(map[string]int, len(names))
	for _, n := range names {
		seen[n]++
	}
	if len(names) != workers*each || len(seen) != workers*each || p.Dropped() != 0 {
		t.Fatalf("exported %d spans, %d distinct, dropped %d; want %d once each", len(names), len(seen), p.Dropped(), workers*each)
	}
}

func TestBatchOptionsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    BatchOptions
		wantErr string
	}{
		{name: "unset", env: nil, want: BatchOptions{}},
		{name: "all", env: map[string]string{
			"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BSP_EXPORT_TIMEOUT": " 1000 ",
			"OTEL_BSP_MAX_QUEUE_SIZE": "4096", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1024",
		}, want: BatchOptions{ScheduleDelay: 200 * time.Millisecond, ExportTimeout: time.Second, MaxQueueSize: 4096, MaxExportBatchSize: 1024}},
		{name: "not a number", env: map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "5s"}, wantErr: `OTEL_BSP_SCHEDULE_DELAY "5s": want a whole number of milliseconds`},
		{name: "negative", env: map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, wantErr: `OTEL_BSP_MAX_QUEUE_SIZE "-1": want a whole number of spans`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BatchOptionsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// BenchmarkSpanProcessor compares ending a sampled span into the SDK's batch span
// processor and into BatchProcessor, both feeding an exporter that drops the batches.
// Run it with -cpu 1,2: with one core the SDK processor's goroutine wake-up per span
// shows.
func BenchmarkSpanProcessor(b *testing.B) {
	for _, tc := range []struct {
		name string
		proc func() sdktrace.SpanProcessor
	}{
		{"sdk", func() sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(discardSpans{}) }},
		{"svckit", func() sdktrace.SpanProcessor { return NewBatchProcessor(discardSpans{}, BatchOptions{}) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(tc.proc()))
			defer tp.Shutdown(context.Background())
			tr := tp.Tracer("bench")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, s := tr.Start(ctx, "Add/Sum")
				s.End()
			}
		})
	}
}

type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }
