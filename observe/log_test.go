package observe

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/transport/meta"
)

func TestLoggerIDs(t *testing.T) {
	spanCtx, sc := startSpan(t, context.Background())
	tests := []struct {
		name      string
		ctx       context.Context
		wantTrace bool
		wantReqID string
	}{
		{"no ids", context.Background(), false, ""},
		{"span", spanCtx, true, ""},
		{"request id", meta.WithRequestID(context.Background(), "req-1"), false, "req-1"},
		{"both", meta.WithRequestID(spanCtx, "req-2"), true, "req-2"},
		{"invalid span context", trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := NewLogger(&buf, LogOptions{Service: "greeter"})
			logger.InfoContext(tt.ctx, "hello", "n", 1)
			m := oneLine(t, &buf)
			if m["msg"] != "hello" || m["service"] != "greeter" || m["n"] != 1.0 || m["level"] != "INFO" {
				t.Errorf("line = %v", m)
			}
			checkIDs(t, m, tt.wantTrace, sc, tt.wantReqID)
		})
	}
}

// checkIDs checks the top-level id attributes of a decoded log line.
func checkIDs(t *testing.T, m map[string]any, wantTrace bool, sc trace.SpanContext, wantReqID string) {
	t.Helper()
	if wantTrace {
		if m[TraceIDKey] != sc.TraceID().String() || m[SpanIDKey] != sc.SpanID().String() {
			t.Errorf("trace_id, span_id = %v, %v, want %v, %v", m[TraceIDKey], m[SpanIDKey], sc.TraceID(), sc.SpanID())
		}
	} else if _, ok := m[TraceIDKey]; ok {
		t.Errorf("line has trace_id: %v", m)
	} else if _, ok := m[SpanIDKey]; ok {
		t.Errorf("line has span_id: %v", m)
	}
	if wantReqID != "" {
		if m[RequestIDKey] != wantReqID {
			t.Errorf("request_id = %v, want %q", m[RequestIDKey], wantReqID)
		}
	} else if _, ok := m[RequestIDKey]; ok {
		t.Errorf("line has request_id: %v", m)
	}
}

func TestLoggerWithAttrsAndGroups(t *testing.T) {
	spanCtx, sc := startSpan(t, context.Background())
	ctx := meta.WithRequestID(spanCtx, "r1")

	var buf bytes.Buffer
	base := NewLogger(&buf, LogOptions{})

	t.Run("with attrs", func(t *testing.T) {
		buf.Reset()
		base.With("a", "x").With("b", "y").InfoContext(ctx, "m")
		m := oneLine(t, &buf)
		if m["a"] != "x" || m["b"] != "y" {
			t.Errorf("line = %v", m)
		}
		checkIDs(t, m, true, sc, "r1")
	})
	t.Run("with group", func(t *testing.T) {
		buf.Reset()
		l := base.With("a", "x").WithGroup("g").With("b", "y").WithGroup("h")
		l.InfoContext(ctx, "m", "c", "z")
		m := oneLine(t, &buf)
		checkIDs(t, m, true, sc, "r1")
		g, _ := m["g"].(map[string]any)
		h, _ := g["h"].(map[string]any)
		if m["a"] != "x" || g["b"] != "y" || h["c"] != "z" {
			t.Errorf("line = %v", m)
		}
		if _, ok := g[TraceIDKey]; ok {
			t.Errorf("trace_id inside group: %v", m)
		}
	})
	t.Run("with group no ids", func(t *testing.T) {
		buf.Reset()
		base.WithGroup("g").InfoContext(context.Background(), "m", "c", "z")
		m := oneLine(t, &buf)
		checkIDs(t, m, false, sc, "")
		if g, _ := m["g"].(map[string]any); g["c"] != "z" {
			t.Errorf("line = %v", m)
		}
	})
	t.Run("handler stays wrapped", func(t *testing.T) {
		h := base.With("a", 1).WithGroup("g").Handler()
		if _, ok := h.(*contextHandler); !ok {
			t.Errorf("derived handler is %T, want *contextHandler", h)
		}
		if NewContextHandler(h) != h {
			t.Errorf("NewContextHandler wrapped a context handler again")
		}
	})
	t.Run("record reused", func(t *testing.T) {
		// A record with attributes past the inline ones, handled twice: the ids must be
		// added once per line and the caller's record left alone.
		buf.Reset()
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
		for i := range 7 {
			r.AddAttrs(slog.Int("k"+strconv.Itoa(i), i))
		}
		h := base.Handler()
		for range 2 {
			if err := h.Handle(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if r.NumAttrs() != 7 {
			t.Errorf("caller's record has %d attrs, want 7", r.NumAttrs())
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("got %d lines", len(lines))
		}
		for _, l := range lines {
			if n := strings.Count(l, `"trace_id"`); n != 1 {
				t.Errorf("line has %d trace_id: %s", n, l)
			}
		}
	})
}

func TestLoggerOptions(t *testing.T) {
	ctx := meta.WithRequestID(context.Background(), "r1")
	var lv slog.LevelVar
	lv.Set(slog.LevelWarn)
	var buf bytes.Buffer
	logger := NewLogger(&buf, LogOptions{Level: &lv, Format: "text", AddSource: true})
	logger.InfoContext(ctx, "dropped")
	logger.WarnContext(ctx, "kept")
	out := buf.String()
	if strings.Contains(out, "dropped") || !strings.Contains(out, "msg=kept") ||
		!strings.Contains(out, "request_id=r1") || !strings.Contains(out, "source=") {
		t.Errorf("text output = %q", out)
	}
	lv.Set(slog.LevelDebug)
	buf.Reset()
	logger.DebugContext(ctx, "debug")
	if !strings.Contains(buf.String(), "msg=debug") {
		t.Errorf("after lowering the level, output = %q", buf.String())
	}
}
