package observe

import (
	"context"
	"log/slog"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// Access log messages and attribute keys.
const (
	AccessLogServerMsg = "request" // message of a line for a call a server received
	AccessLogClientMsg = "call"    // message of a line for a call a client made

	TransportKey  = "transport"   // the endpoint's transport
	RPCServiceKey = "rpc_service" // the endpoint's service (not "service", which names the process)
	RPCMethodKey  = "rpc_method"  // the endpoint's method
	DurationKey   = "duration_ms" // the call's duration in milliseconds, as a number: 1.5
	KindKey       = "kind"        // the svcerr kind of a failed call
	ErrorKey      = "error"       // the error text of a failed call
)

// AccessLog returns middleware that logs one line per call after it completes: message
// "request" for servers and "call" for clients, with the transport, rpc_service,
// rpc_method and duration_ms (milliseconds as a number: 1.234), and for a failed call its kind and error
// text. Successful calls log at Info; failures the caller caused (invalid_argument,
// not_found, canceled, …) at Warn; failures of the server or below it ([ServerFault]) at
// Error.
//
// The line is logged with the call's context, so trace_id, span_id and request_id are
// added; a logger whose handler does not come from NewContextHandler is wrapped in one. A
// nil logger disables access logging.
func AccessLog(logger *slog.Logger) endpoint.Middleware {
	if logger == nil {
		return endpoint.Nop
	}
	base := NewContextHandler(logger.Handler())
	if ch, ok := base.(*contextHandler); ok && ch.lines != nil {
		return fastAccessLog(ch.lines)
	}
	// The access log adds the context's ids to its own record, which nobody else shares,
	// so it can skip the context handler's defensive copy of the record.
	direct := false
	if ch, ok := base.(*contextHandler); ok && len(ch.ops) == 0 {
		base, direct = ch.h, true
	}
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		// Pre-format the endpoint's attributes once.
		h := base.WithAttrs([]slog.Attr{
			slog.String(TransportKey, info.Transport),
			slog.String(RPCServiceKey, info.Service),
			slog.String(RPCMethodKey, info.Method),
		})
		msg := AccessLogServerMsg
		if info.Client {
			msg = AccessLogClientMsg
		}
		return func(ctx context.Context, req any) (any, error) {
			if !h.Enabled(ctx, slog.LevelError) {
				return next(ctx, req)
			}
			start := callStartOr(ctx)
			resp, err := next(ctx, req)
			end := time.Now()
			level := slog.LevelInfo
			var kind svcerr.Kind
			if err != nil {
				kind = svcerr.KindOf(err)
				level = LogLevel(kind)
			}
			if level != slog.LevelError && !h.Enabled(ctx, level) {
				return resp, err
			}
			// The record is built here, not with Logger.LogAttrs, to skip the caller's
			// program counter lookup: the source of an access log line is always this file.
			r := slog.NewRecord(end, level, msg, 0)
			// Milliseconds with the unit in the key, so that every log pipeline reads the
			// same number in JSON and text (a slog Duration is nanoseconds in JSON and
			// "1.5ms" in text).
			d := slog.Float64(DurationKey, durationMS(end.Sub(start)))
			if err != nil {
				r.AddAttrs(d, slog.String(KindKey, kind.String()), slog.String(ErrorKey, err.Error()))
			} else {
				r.AddAttrs(d)
			}
			if direct {
				var ids [3]slog.Attr
				n := contextIDs(ctx, &ids)
				r.AddAttrs(ids[:n]...)
			}
			_ = h.Handle(ctx, r)
			return resp, err
		}
	}
}

// fastAccessLog is AccessLog for a logger that NewLogger made with the JSON format: the
// same lines, encoded without going through slog (see lineFormat).
func fastAccessLog(j *lineFormat) endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		msg := AccessLogServerMsg
		if info.Client {
			msg = AccessLogClientMsg
		}
		line := newAccessLine(j, msg, info.Transport, info.Service, info.Method)
		return func(ctx context.Context, req any) (any, error) {
			if !j.enabled(slog.LevelError) {
				return next(ctx, req)
			}
			start := callStartOr(ctx)
			resp, err := next(ctx, req)
			end := time.Now()
			level := slog.LevelInfo
			var kind svcerr.Kind
			if err != nil {
				kind = svcerr.KindOf(err)
				level = LogLevel(kind)
			}
			if !j.enabled(level) {
				return resp, err
			}
			if err != nil {
				line.write(ctx, end, level, end.Sub(start), kind.String(), err.Error(), true)
			} else {
				line.write(ctx, end, level, end.Sub(start), "", "", false)
			}
			return resp, err
		}
	}
}

// durationMS returns d in milliseconds.
func durationMS(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// LogLevel returns the level at which AccessLog logs a call that failed with kind k: Error
// for a ServerFault, Warn otherwise.
func LogLevel(k svcerr.Kind) slog.Level {
	if ServerFault(k) {
		return slog.LevelError
	}
	return slog.LevelWarn
}

// ServerFault reports whether a call that failed with kind k failed because of the server
// or something below it rather than the caller: unknown, deadline_exceeded, unimplemented,
// internal, unavailable and data_loss, the gRPC codes that OpenTelemetry's semantic
// conventions count as server errors. Such calls are logged at Error and mark server spans
// as failed.
func ServerFault(k svcerr.Kind) bool {
	switch k {
	case svcerr.Unknown, svcerr.DeadlineExceeded, svcerr.Unimplemented, svcerr.Internal,
		svcerr.Unavailable, svcerr.DataLoss:
		return true
	}
	return false
}
