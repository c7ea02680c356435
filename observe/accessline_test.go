package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"regexp"
	"testing"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// TestAccessLineMatchesSlog checks that the access log's own encoder writes, byte for
// byte, the line slog's JSONHandler writes for the same record.
func TestAccessLineMatchesSlog(t *testing.T) {
	spanCtx, _ := startSpan(t, context.Background())
	times := []time.Time{
		time.Date(2026, 12, 6, 9, 26, 43, 49349233, time.UTC),
		time.Date(2026, 12, 6, 9, 26, 43, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100000000, time.FixedZone("IST", 5*3600+1800)),
	}
	tests := []struct {
		name           string
		ctx            context.Context
		service        string
		info           endpoint.Info
		level          slog.Level
		d              time.Duration
		kind, errText  string
		failed, client bool
	}{
		{name: "ok", ctx: meta.WithRequestID(spanCtx, "0123456789abcdef"), service: "shop",
			info: endpoint.Info{Service: "shop", Method: "Order", Transport: "http"}, level: slog.LevelInfo, d: 1234567 * time.Nanosecond},
		{name: "no ids", ctx: context.Background(), info: endpoint.Info{Service: "s", Method: "M", Transport: "grpc"},
			level: slog.LevelInfo, d: time.Nanosecond},
		{name: "request id only", ctx: meta.WithRequestID(context.Background(), `id"with\quote`), service: "a<b>&c",
			info: endpoint.Info{Service: "s", Method: "M", Transport: "nats"}, level: slog.LevelInfo, d: 0},
		{name: "warn", ctx: spanCtx, info: endpoint.Info{Service: "s", Method: "M", Transport: "grpc"},
			level: slog.LevelWarn, d: 3 * time.Second, kind: "not_found", errText: "no such order: \"42\"", failed: true},
		{name: "error with control and unicode", ctx: spanCtx, service: "svc",
			info:  endpoint.Info{Service: "s\u2028", Method: "M\u2029", Transport: "http", Client: true},
			level: slog.LevelError, d: 90 * time.Hour, kind: "internal", failed: true, client: true,
			errText: "line\nbreak\ttab\rcr \x00\x01\x1f \x7f <html>&amp; é 日本 \xff\xfe bad utf8 \u2028"},
		{name: "debug", ctx: context.Background(), info: endpoint.Info{Service: "s", Method: "M", Transport: "http"},
			level: slog.LevelDebug, d: 17},
		{name: "odd level", ctx: context.Background(), info: endpoint.Info{Service: "s", Method: "M", Transport: "http"},
			level: slog.LevelWarn + 2, d: 17},
	}
	for _, tt := range tests {
		for _, now := range times {
			t.Run(tt.name+"/"+now.Format(time.RFC3339Nano), func(t *testing.T) {
				var fast, want bytes.Buffer
				opts := LogOptions{Service: tt.service, Level: slog.LevelDebug}
				l := NewLogger(&fast, opts).Handler().(*contextHandler).lines
				if l == nil {
					t.Fatal("NewLogger's JSON handler has no line encoder")
				}
				msg := AccessLogServerMsg
				if tt.client {
					msg = AccessLogClientMsg
				}
				newAccessLine(l, msg, tt.info.Transport, tt.info.Service, tt.info.Method).
					write(tt.ctx, now, tt.level, tt.d, tt.kind, tt.errText, tt.failed)

				var h slog.Handler = slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelDebug})
				if tt.service != "" {
					h = h.WithAttrs([]slog.Attr{slog.String("service", tt.service)})
				}
				h = NewContextHandler(h.WithAttrs([]slog.Attr{slog.String(TransportKey, tt.info.Transport),
					slog.String(RPCServiceKey, tt.info.Service), slog.String(RPCMethodKey, tt.info.Method)}))
				r := slog.NewRecord(now, tt.level, msg, 0)
				r.AddAttrs(slog.Float64(DurationKey, durationMS(tt.d)))
				if tt.failed {
					r.AddAttrs(slog.String(KindKey, tt.kind), slog.String(ErrorKey, tt.errText))
				}
				if err := h.Handle(tt.ctx, r); err != nil {
					t.Fatal(err)
				}
				if fast.String() != want.String() {
					t.Errorf("access line\n got %s\nwant %s", fast.String(), want.String())
				}
			})
		}
	}
}

// TestAccessLogFastAndSlogPaths runs the middleware over a NewLogger logger (own encoder)
// and over a plain slog JSON logger (slog's handler) and compares the lines, times apart.
func TestAccessLogFastAndSlogPaths(t *testing.T) {
	spanCtx, _ := startSpan(t, meta.WithRequestID(context.Background(), "feedfacecafebeef"))
	var fast, slow bytes.Buffer
	fastLog := NewLogger(&fast, LogOptions{Service: "shop"})
	slowLog := slog.New(slog.NewJSONHandler(&slow, nil).WithAttrs([]slog.Attr{slog.String("service", "shop")}))
	info := endpoint.Info{Service: "shop", Method: "Order", Transport: "grpc"}
	for _, err := range []error{nil, svcerr.New(svcerr.NotFound, "no such order"), errors.New("boom \"x\"")} {
		for _, l := range []*slog.Logger{fastLog, slowLog} {
			_, _ = endpoint.Wrap(info, failWith(err), AccessLog(l))(spanCtx, "")
		}
	}
	strip := regexp.MustCompile(`"time":"[^"]*"|"duration_ms":[0-9.e-]+`)
	got := strip.ReplaceAllString(fast.String(), "")
	want := strip.ReplaceAllString(slow.String(), "")
	if got != want || got == "" {
		t.Errorf("own encoder:\n%s\nslog:\n%s", got, want)
	}
	for _, m := range jsonLines(t, &fast) {
		if _, ok := m[DurationKey].(float64); !ok {
			t.Errorf("duration_ms is not a number: %v", m)
		}
	}
}

func TestAppendJSONFloat(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.5, 1e-6, 9.99e-7, 1e-7, 1.5e-9, 1e20, 1e21, 1.23456789e22, 123.456,
		0.001234, 1234567.891, math.SmallestNonzeroFloat64, math.MaxFloat64, -2.5e-8} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONFloat(nil, f); string(got) != string(want) {
			t.Errorf("appendJSONFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestAccessLogFlushesErrors(t *testing.T) {
	var out bytes.Buffer
	bw := NewBufferedWriter(&out, 0, time.Hour)
	logger := NewLogger(bw, LogOptions{Flush: bw, FlushLevel: slog.LevelError})
	info := endpoint.Info{Service: "s", Method: "M", Transport: "http"}
	_, _ = endpoint.Wrap(info, failWith(nil), AccessLog(logger))(context.Background(), "")
	if out.Len() != 0 {
		t.Fatalf("an Info line was flushed at once: %q", out.String())
	}
	_, _ = endpoint.Wrap(info, failWith(errors.New("boom")), AccessLog(logger))(context.Background(), "")
	if n := len(jsonLines(t, &out)); n != 2 {
		t.Fatalf("after an Error line, %d lines written, want 2:\n%s", n, out.String())
	}
}

// TestAppendTime checks the access log's cached timestamp formatting against
// time.RFC3339Nano over fractions, second and zone changes, and locations with the same
// instant.
func TestAppendTime(t *testing.T) {
	ist := time.FixedZone("IST", 5*3600+1800)
	west := time.FixedZone("", -(3*3600 + 30*60))
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	base := time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC) // 01:59:59 in New York, before DST
	var times []time.Time
	for _, d := range []time.Duration{0, 1, 10, 100 * time.Millisecond, 123456789, 999999999, time.Second, time.Second + 5000, 2 * time.Second, time.Hour} {
		for _, loc := range []*time.Location{time.UTC, ist, west, ny, time.Local} {
			times = append(times, base.Add(d).In(loc))
		}
	}
	times = append(times, time.Date(-1, 1, 1, 0, 0, 0, 5, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{})
	var j lineFormat
	for _, tm := range times {
		want := tm.Format(time.RFC3339Nano)
		if got := string(j.appendTime(nil, tm)); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
		// A second line in the same second takes the cached prefix.
		if got := string(j.appendTime(nil, tm)); got != want {
			t.Errorf("appendTime(%v), cached = %s, want %s", tm, got, want)
		}
	}
}
