package resilience_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
)

var info = endpoint.Info{Service: "calc", Method: "Div", Transport: "http"}

type divRequest struct{ A, B int }

type divResponse struct{ Q int }

// panicRequest asks div to panic with panicWith when panics is set.
type panicRequest struct {
	divRequest
	panicWith any
	panics    bool
}

// div divides, and panics when asked to: a stand-in for a buggy endpoint.
func div(_ context.Context, r panicRequest) (divResponse, error) {
	if r.panics {
		panicInEndpoint(r.panicWith)
	}
	return divResponse{Q: r.A / r.B}, nil
}

//go:noinline
func panicInEndpoint(v any) { panic(v) }

type customPanic struct{ code int }

var errBoom = errors.New("boom")

// logLines decodes the JSON lines in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		lines = append(lines, m)
	}
	return lines
}

func TestRecover(t *testing.T) {
	tests := []struct {
		name      string
		value     any // panic(value); a nil-map write when value is "nil map"
		wantPanic string
		check     func(t *testing.T, err error)
	}{
		{name: "string", value: "secret boom", wantPanic: "secret boom"},
		{name: "error", value: errBoom, wantPanic: "boom", check: func(t *testing.T, err error) {
			if !errors.Is(err, errBoom) {
				t.Error("errors.Is(err, panic value) = false")
			}
		}},
		{name: "svcerr", value: svcerr.New(svcerr.NotFound, "x"), wantPanic: "not_found: x",
			check: func(t *testing.T, err error) {
				// A panic is a bug whatever its value: the call fails with Internal.
				if !errors.Is(err, svcerr.New(svcerr.NotFound, "")) {
					t.Error("the panic value is not in the chain")
				}
			}},
		{name: "struct", value: customPanic{code: 7}, wantPanic: "{7}"},
		{name: "nil", value: nil, wantPanic: "panic called with nil argument", check: func(t *testing.T, err error) {
			var pe *runtime.PanicNilError
			if !errors.As(err, &pe) {
				t.Errorf("errors.As(err, *runtime.PanicNilError) = false for %v", err)
			}
		}},
		{name: "runtime error", value: "nil map", wantPanic: "assignment to entry in nil map",
			check: func(t *testing.T, err error) {
				var re runtime.Error
				if !errors.As(err, &re) {
					t.Errorf("errors.As(err, runtime.Error) = false for %v", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, nil))
			e := div
			if tt.value == "nil map" {
				e = func(ctx context.Context, r panicRequest) (divResponse, error) {
					if r.panics {
						var m map[string]int
						m["x"] = 1
					}
					return div(ctx, r)
				}
			}
			wrapped := endpoint.Wrap(info, e, resilience.Recover(logger))

			resp, err := wrapped(context.Background(), panicRequest{divRequest: divRequest{A: 6, B: 3}, panics: true, panicWith: tt.value})
			if resp != (divResponse{}) {
				t.Errorf("resp = %+v, want zero", resp)
			}
			se := svcerr.From(err)
			if err == nil || se.Kind != svcerr.Internal || se.Message != "internal error" {
				t.Fatalf("err = %v, want an Internal *svcerr.Error with message \"internal error\"", err)
			}
			if tt.check != nil {
				tt.check(t, err)
			}

			lines := logLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("%d log lines, want 1:\n%s", len(lines), buf.String())
			}
			l := lines[0]
			for k, want := range map[string]string{"level": "ERROR", "msg": "panic in endpoint", "service": "calc",
				"method": "Div", "transport": "http", "panic": tt.wantPanic} {
				if got, _ := l[k].(string); got != want {
					t.Errorf("log %s = %q, want %q", k, got, want)
				}
			}
			stack, _ := l["stack"].(string)
			if !strings.Contains(stack, "resilience_test.") || !strings.Contains(stack, "goroutine ") {
				t.Errorf("log stack does not show the panicking code:\n%s", stack)
			}
			if tt.name != "runtime error" && !strings.Contains(stack, "resilience_test.panicInEndpoint") {
				t.Errorf("log stack lacks panicInEndpoint:\n%s", stack)
			}

			// The endpoint keeps serving.
			buf.Reset()
			resp, err = wrapped(context.Background(), panicRequest{divRequest: divRequest{A: 6, B: 3}})
			if err != nil || resp.Q != 2 {
				t.Errorf("next call: got (%+v, %v), want ({Q:2}, nil)", resp, err)
			}
			if buf.Len() != 0 {
				t.Errorf("next call logged %s", buf.String())
			}
		})
	}
}

func TestRecoverPassesResultsThrough(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	errFail := svcerr.New(svcerr.InvalidArgument, "b must not be zero")
	e := func(_ context.Context, r divRequest) (divResponse, error) {
		if r.B == 0 {
			return divResponse{}, errFail
		}
		return divResponse{Q: r.A / r.B}, nil
	}
	wrapped := endpoint.Wrap(info, e, resilience.Recover(logger))
	if resp, err := wrapped(context.Background(), divRequest{A: 9, B: 3}); resp.Q != 3 || err != nil {
		t.Errorf("got (%+v, %v), want ({Q:3}, nil)", resp, err)
	}
	if _, err := wrapped(context.Background(), divRequest{A: 9}); err != errFail {
		t.Errorf("err = %v, want %v unchanged", err, errFail)
	}
	if buf.Len() != 0 {
		t.Errorf("logged without a panic: %s", buf.String())
	}
}

func TestRecoverCoversInnerMiddlewareAndNilLogger(t *testing.T) {
	panicky := func(endpoint.Info, endpoint.Handler) endpoint.Handler {
		return func(context.Context, any) (any, error) { panic("in middleware") }
	}
	wrapped := endpoint.Wrap(info, div, resilience.Recover(nil), panicky)
	if _, err := wrapped(context.Background(), panicRequest{}); svcerr.KindOf(err) != svcerr.Internal {
		t.Errorf("err = %v, want internal", err)
	}
}

// waitForDone blocks until ctx is done and returns ctx.Err(). The minute is only a bound
// that keeps a broken Timeout from hanging the test run.
func waitForDone(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return errors.New("the context was not done within a minute")
	}
}

func TestTimeoutExceeded(t *testing.T) {
	downstream := svcerr.New(svcerr.DeadlineExceeded, "catalog.Reserve timed out")
	tests := []struct {
		name      string
		after     func(ctx context.Context) (any, error) // what the endpoint does once ctx is done
		wantResp  any
		wantKind  svcerr.Kind
		wantMsg   string // "": the error is returned unchanged
		wantSame  error  // non-nil: the error must be this one
		wantCause error
	}{
		{name: "context error", after: func(ctx context.Context) (any, error) { return nil, ctx.Err() },
			wantKind: svcerr.DeadlineExceeded, wantMsg: "calc.Slow timed out after 1ms", wantCause: context.DeadlineExceeded},
		{name: "other error", after: func(context.Context) (any, error) { return nil, errBoom },
			wantKind: svcerr.DeadlineExceeded, wantMsg: "calc.Slow timed out after 1ms", wantCause: errBoom},
		{name: "other svcerr", after: func(context.Context) (any, error) { return nil, svcerr.New(svcerr.Unavailable, "x") },
			wantKind: svcerr.DeadlineExceeded, wantMsg: "calc.Slow timed out after 1ms", wantCause: svcerr.New(svcerr.Unavailable, "")},
		{name: "deadline svcerr kept", after: func(context.Context) (any, error) { return nil, downstream },
			wantKind: svcerr.DeadlineExceeded, wantSame: downstream},
		{name: "late success", after: func(context.Context) (any, error) { return "late", nil }, wantResp: "late"},
	}
	// A server endpoint gets a lazy deadline and a client endpoint a plain one; both must
	// end the call alike.
	for _, client := range []bool{false, true} {
		for _, tt := range tests {
			name := "server/" + tt.name
			if client {
				name = "client/" + tt.name
			}
			t.Run(name, func(t *testing.T) {
				slow := func(ctx context.Context, _ any) (any, error) {
					if err := waitForDone(ctx); err != context.DeadlineExceeded {
						return nil, fmt.Errorf("ctx.Err() = %v, want deadline exceeded", err)
					}
					return tt.after(ctx)
				}
				h := resilience.Timeout(time.Millisecond)(endpoint.Info{Service: "calc", Method: "Slow", Client: client}, slow)
				resp, err := h(context.Background(), nil)
				if resp != tt.wantResp {
					t.Errorf("resp = %v, want %v", resp, tt.wantResp)
				}
				if tt.wantKind == svcerr.Unknown {
					if err != nil {
						t.Errorf("err = %v, want nil", err)
					}
					return
				}
				if k := svcerr.KindOf(err); k != tt.wantKind {
					t.Fatalf("kind = %v (%v), want %v", k, err, tt.wantKind)
				}
				if tt.wantSame != nil && err != tt.wantSame {
					t.Errorf("err = %v, want %v unchanged", err, tt.wantSame)
				}
				if tt.wantMsg != "" {
					if msg := svcerr.From(err).Message; msg != tt.wantMsg {
						t.Errorf("message = %q, want %q", msg, tt.wantMsg)
					}
				}
				if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
					t.Errorf("errors.Is(%v, %v) = false", err, tt.wantCause)
				}
			})
		}
	}
}

func TestTimeoutErrorBeforeDeadlineKeepsItsKind(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind svcerr.Kind
	}{
		{"svcerr", svcerr.New(svcerr.NotFound, "no such user"), svcerr.NotFound},
		{"plain", errBoom, svcerr.Internal},
		{"canceled", context.Canceled, svcerr.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fail := func(context.Context, any) (any, error) { return nil, tt.err }
			_, err := resilience.Timeout(time.Hour)(info, fail)(context.Background(), nil)
			if err != tt.err || svcerr.KindOf(err) != tt.kind {
				t.Errorf("err = %v (%v), want %v unchanged", err, svcerr.KindOf(err), tt.err)
			}
		})
	}
}

func TestTimeoutCallerCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	slow := func(ctx context.Context, _ any) (any, error) {
		cancel()
		return nil, waitForDone(ctx)
	}
	_, err := resilience.Timeout(time.Hour)(info, slow)(ctx, nil)
	if err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled unchanged", err)
	}
}

// deadlineSeen calls a Timeout(d)-wrapped endpoint with ctx and returns the deadline the
// endpoint saw, and the time before and after the call.
func deadlineSeen(t *testing.T, ctx context.Context, d time.Duration) (dl time.Time, ok bool, before, after time.Time) {
	t.Helper()
	h := resilience.Timeout(d)(info, func(ctx context.Context, _ any) (any, error) {
		dl, ok = ctx.Deadline()
		return "ok", nil
	})
	before = time.Now()
	resp, err := h(ctx, nil)
	after = time.Now()
	if resp != "ok" || err != nil {
		t.Fatalf("got (%v, %v), want (ok, nil)", resp, err)
	}
	return dl, ok, before, after
}

func TestTimeoutDeadline(t *testing.T) {
	t.Run("set", func(t *testing.T) {
		dl, ok, before, after := deadlineSeen(t, context.Background(), time.Hour)
		if !ok || dl.Before(before.Add(time.Hour)) || dl.After(after.Add(time.Hour)) {
			t.Errorf("deadline = %v, %v; want one hour after the call began", dl, ok)
		}
	})
	t.Run("caller's earlier deadline kept", func(t *testing.T) {
		callerDL := time.Now().Add(time.Hour)
		ctx, cancel := context.WithDeadline(context.Background(), callerDL)
		defer cancel()
		if dl, ok, _, _ := deadlineSeen(t, ctx, 2*time.Hour); !ok || !dl.Equal(callerDL) {
			t.Errorf("deadline = %v, %v; want the caller's %v", dl, ok, callerDL)
		}
	})
	t.Run("caller's later deadline shortened", func(t *testing.T) {
		callerDL := time.Now().Add(2 * time.Hour)
		ctx, cancel := context.WithDeadline(context.Background(), callerDL)
		defer cancel()
		dl, ok, before, after := deadlineSeen(t, ctx, time.Hour)
		if !ok || dl.Before(before.Add(time.Hour)) || dl.After(after.Add(time.Hour)) {
			t.Errorf("deadline = %v, %v; want one hour after the call began", dl, ok)
		}
	})
}

func TestTimeoutCallerDeadlineExceeded(t *testing.T) {
	// The caller's deadline has passed already, so it is the earlier one.
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	slow := func(ctx context.Context, _ any) (any, error) { return nil, waitForDone(ctx) }
	_, err := resilience.Timeout(time.Hour)(endpoint.Info{Service: "calc", Method: "Slow"}, slow)(ctx, nil)
	if k := svcerr.KindOf(err); k != svcerr.DeadlineExceeded {
		t.Fatalf("kind = %v (%v), want deadline_exceeded", k, err)
	}
	if msg := svcerr.From(err).Message; msg != "calc.Slow: deadline exceeded" {
		t.Errorf("message = %q", msg)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the context error is not the cause of %v", err)
	}
}

func TestTimeoutOff(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		info endpoint.Info
	}{
		{"zero", 0, info},
		{"negative", -time.Second, info},
		{"streaming", time.Nanosecond, endpoint.Info{Service: "calc", Method: "Watch", Streaming: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hasDeadline bool
			next := func(ctx context.Context, _ any) (any, error) {
				_, hasDeadline = ctx.Deadline()
				return "ok", nil
			}
			h := resilience.Timeout(tt.d)(tt.info, next)
			if reflect.ValueOf(h).Pointer() != reflect.ValueOf(next).Pointer() {
				t.Error("Timeout wrapped the handler, want it returned unchanged")
			}
			if resp, err := h(context.Background(), nil); resp != "ok" || err != nil || hasDeadline {
				t.Errorf("got (%v, %v), deadline %v; want (ok, nil), no deadline", resp, err, hasDeadline)
			}
		})
	}
}
