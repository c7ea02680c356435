package observe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// failWith returns an endpoint that returns err.
func failWith(err error) endpoint.Endpoint[string, string] {
	return func(_ context.Context, req string) (string, error) {
		if err != nil {
			return "", err
		}
		return "hello " + req, nil
	}
}

func TestAccessLog(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		client    bool
		wantLevel string
		wantKind  string
	}{
		{"ok", nil, false, "INFO", ""},
		{"ok client", nil, true, "INFO", ""},
		{"invalid argument", svcerr.Invalid("name", "is required"), false, "WARN", "invalid_argument"},
		{"not found", svcerr.New(svcerr.NotFound, "no such user"), false, "WARN", "not_found"},
		{"unauthenticated", svcerr.New(svcerr.Unauthenticated, "no token"), false, "WARN", "unauthenticated"},
		{"permission denied", svcerr.New(svcerr.PermissionDenied, "no"), false, "WARN", "permission_denied"},
		{"resource exhausted", svcerr.New(svcerr.ResourceExhausted, "slow down"), false, "WARN", "resource_exhausted"},
		{"canceled", context.Canceled, false, "WARN", "canceled"},
		{"deadline", fmt.Errorf("db: %w", context.DeadlineExceeded), false, "ERROR", "deadline_exceeded"},
		{"plain error is internal", errors.New("boom"), false, "ERROR", "internal"},
		{"unavailable", svcerr.New(svcerr.Unavailable, "down"), true, "ERROR", "unavailable"},
		{"unimplemented", svcerr.New(svcerr.Unimplemented, "later"), false, "ERROR", "unimplemented"},
		{"data loss", svcerr.New(svcerr.DataLoss, "gone"), false, "ERROR", "data_loss"},
		{"unknown", svcerr.New(svcerr.Unknown, "?"), false, "ERROR", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := NewLogger(&buf, LogOptions{Level: slog.LevelDebug})
			info := endpoint.Info{Service: "greeter", Method: "Hello", Transport: "http", Client: tt.client}
			e := endpoint.Wrap(info, failWith(tt.err), AccessLog(logger))
			ctx := meta.WithRequestID(context.Background(), "rid")
			if _, err := e(ctx, "bob"); err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			m := oneLine(t, &buf)
			wantMsg := "request"
			if tt.client {
				wantMsg = "call"
			}
			if m["msg"] != wantMsg || m["level"] != tt.wantLevel {
				t.Errorf("msg, level = %v, %v, want %v, %v", m["msg"], m["level"], wantMsg, tt.wantLevel)
			}
			if m[TransportKey] != "http" || m[RPCServiceKey] != "greeter" || m[RPCMethodKey] != "Hello" || m[RequestIDKey] != "rid" {
				t.Errorf("line = %v", m)
			}
			if d, ok := m[DurationKey].(float64); !ok || d <= 0 {
				t.Errorf("duration_ms = %v", m[DurationKey])
			}
			if tt.err == nil {
				if _, ok := m[KindKey]; ok {
					t.Errorf("successful call has kind: %v", m)
				}
				if _, ok := m[ErrorKey]; ok {
					t.Errorf("successful call has error: %v", m)
				}
			} else if m[KindKey] != tt.wantKind || m[ErrorKey] != tt.err.Error() {
				t.Errorf("kind, error = %v, %v, want %v, %v", m[KindKey], m[ErrorKey], tt.wantKind, tt.err.Error())
			}
		})
	}
}

func TestAccessLogLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	logger := NewLogger(&buf, LogOptions{Level: slog.LevelError})
	info := endpoint.Info{Service: "s", Method: "M", Transport: "grpc"}
	ctx := context.Background()
	for _, err := range []error{nil, svcerr.New(svcerr.NotFound, "x"), errors.New("boom")} {
		_, _ = endpoint.Wrap(info, failWith(err), AccessLog(logger))(ctx, "")
	}
	lines := jsonLines(t, &buf)
	if len(lines) != 1 || lines[0][KindKey] != "internal" {
		t.Errorf("at level Error got lines %v, want only the internal error", lines)
	}

	buf.Reset()
	quiet := NewLogger(&buf, LogOptions{Level: slog.LevelError + 1})
	if _, err := endpoint.Wrap(info, failWith(errors.New("boom")), AccessLog(quiet))(ctx, ""); err == nil {
		t.Error("error lost")
	}
	if buf.Len() != 0 {
		t.Errorf("disabled logger wrote %q", buf.String())
	}
}

func TestAccessLogPlainLogger(t *testing.T) {
	// A logger not made by NewLogger still gets the ids.
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	info := endpoint.Info{Service: "s", Method: "M", Transport: "inproc"}
	ctx := meta.WithRequestID(context.Background(), "abc")
	_, _ = endpoint.Wrap(info, failWith(nil), AccessLog(logger))(ctx, "")
	if m := oneLine(t, &buf); m[RequestIDKey] != "abc" {
		t.Errorf("line = %v", m)
	}
}

func TestAccessLogNil(t *testing.T) {
	info := endpoint.Info{Service: "s", Method: "M"}
	if got, err := endpoint.Wrap(info, failWith(nil), AccessLog(nil))(context.Background(), "x"); got != "hello x" || err != nil {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestAccessLogCarriesSpan(t *testing.T) {
	tp, rec := newRecorder(t)
	var buf bytes.Buffer
	logger := NewLogger(&buf, LogOptions{})
	info := endpoint.Info{Service: "greeter", Method: "Hello", Transport: "http"}
	e := endpoint.Wrap(info, failWith(nil), Tracing(tp), AccessLog(logger))
	if _, err := e(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("got %d spans", len(spans))
	}
	checkIDs(t, oneLine(t, &buf), true, spans[0].SpanContext(), "")
}

// TestAccessLogDurationUnit: the duration is milliseconds, named so, and the same number
// in the JSON and text formats.
func TestAccessLogDurationUnit(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want float64
	}{{1500 * time.Microsecond, 1.5}, {2 * time.Second, 2000}, {250 * time.Nanosecond, 0.00025}, {0, 0}} {
		if got := durationMS(tt.d); got != tt.want {
			t.Errorf("durationMS(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
	if DurationKey != "duration_ms" {
		t.Errorf("DurationKey = %q", DurationKey)
	}
	info := endpoint.Info{Service: "s", Method: "M", Transport: "grpc"}
	slow := func(context.Context, string) (string, error) {
		time.Sleep(2 * time.Millisecond) // the duration under test, not a wait for a condition
		return "", nil
	}
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		logger := NewLogger(&buf, LogOptions{Level: slog.LevelInfo, Format: format})
		_, _ = endpoint.Wrap(info, slow, AccessLog(logger))(context.Background(), "")
		line := buf.String()
		i := strings.Index(line, "duration_ms")
		if i < 0 {
			t.Fatalf("%s: no duration_ms in %s", format, line)
		}
		rest := strings.TrimLeft(line[i+len("duration_ms"):], `":=`)
		end := strings.IndexAny(rest, ", }\n")
		ms, err := strconv.ParseFloat(rest[:end], 64)
		if err != nil || ms < 2 || ms > 10_000 {
			t.Errorf("%s: duration_ms %q (%v) is not the milliseconds slept: %s", format, rest[:end], err, line)
		}
	}
}
