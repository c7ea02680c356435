package observe

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// callStart is the context Tracing hands to the next handler when its span knows when it
// started (a recording span of the lean OTLP provider): the access log and the metrics
// directly inside take the call's start from it instead of reading the clock again. On a
// virtual machine a clock read costs 40–100 ns, and a server's default chain read it a
// dozen times per call.
type callStart struct {
	context.Context
	at time.Time
}

// CallStart returns when the call started.
func (c *callStart) CallStart() time.Time { return c.at }

// callStarter is a context that knows when its call started: a *callStart, or the
// context a recording span of observe/otlp starts, which carries the span's start itself.
type callStarter interface{ CallStart() time.Time }

// startTimer is implemented by the recording spans of observe/otlp.
type startTimer interface{ StartTime() time.Time }

// withCallStart returns ctx carrying span's start time when span reports one and ctx
// does not carry it already.
func withCallStart(ctx context.Context, span trace.Span) context.Context {
	if _, ok := ctx.(callStarter); ok {
		return ctx
	}
	if st, ok := span.(startTimer); ok {
		return &callStart{Context: ctx, at: st.StartTime()}
	}
	return ctx
}

// callStartOr returns when the call started: the start time Tracing left in ctx when ctx
// is the context it handed on (no other middleware wrapped it since), otherwise now.
func callStartOr(ctx context.Context) time.Time {
	if c, ok := ctx.(callStarter); ok {
		return c.CallStart()
	}
	return time.Now()
}
