package observe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newRecorder returns a real SDK tracer provider that records ended spans, always sampling.
func newRecorder(t testing.TB) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// startSpan starts a real SDK span and returns its context and span context.
func startSpan(t testing.TB, ctx context.Context) (context.Context, trace.SpanContext) {
	t.Helper()
	tp, _ := newRecorder(t)
	ctx, span := tp.Tracer("test").Start(ctx, "test")
	t.Cleanup(func() { span.End() })
	return ctx, span.SpanContext()
}

// jsonLines decodes every line of buf as a JSON object.
func jsonLines(t testing.TB, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

// oneLine decodes buf as exactly one JSON line.
func oneLine(t testing.TB, buf *bytes.Buffer) map[string]any {
	t.Helper()
	lines := jsonLines(t, buf)
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1:\n%s", len(lines), buf)
	}
	return lines[0]
}
