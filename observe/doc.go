// Package observe gives svckit services their logs, metrics, traces and request ids.
//
//   - Logs: [NewLogger] writes log/slog JSON lines; its [NewContextHandler] adds trace_id,
//     span_id and request_id to every line logged with a context that carries them.
//     [AccessLog] writes one line per call.
//   - Metrics: [Metrics] keeps Prometheus RED metrics (requests, errors by kind, duration)
//     per endpoint, transport and side; [NewRegistry] adds the Go runtime and process
//     collectors, and [MetricsHandler] serves them.
//   - Tracing: [NewTracerProvider] builds a tracer provider configured by the standard
//     OTEL_* environment variables (svckit's lean one on the default OTLP http/protobuf
//     path, an OpenTelemetry SDK provider otherwise); [Tracing] starts a span per call, and
//     [Propagator] carries W3C traceparent and baggage across processes.
//   - Request ids live in package transport/meta (meta.RequestID, meta.WithRequestID,
//     meta.NewRequestID), next to the rest of what travels on the wire; the log handler
//     reads them from there. The names here ([NewRequestID], [WithRequestID],
//     [RequestIDFrom], [ValidRequestID]) are deprecated and forward to it.
//
// Each middleware resolves its per-endpoint state (metric series, span names and
// attributes, log attributes) once, when it wraps an endpoint, so a call only pays for
// counter increments, one span and one log line.
//
// Transports put the request id and the remote span context into the context before the
// middleware runs; they do not import this package, and build the same propagator as
// [Propagator] themselves. The recommended order, outermost first, is
//
//	endpoint.Chain(observe.Tracing(tp), observe.AccessLog(logger), metrics.Middleware(), …)
//
// so that the access log line carries the call's own span id, and recovery and timeout
// middleware go after these so that a panic or a timeout is logged and counted as an error.
package observe
