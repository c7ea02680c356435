// Package otlp exports OpenTelemetry spans to an OTLP endpoint over HTTP or gRPC (an
// OpenTelemetry Collector, Jaeger, Tempo, the svckit dev runner) with less CPU than the
// official go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp and
// otlptracegrpc exporters.
//
// [Exporter] is an [go.opentelemetry.io/otel/sdk/trace.SpanExporter]. Where the official
// exporter converts each batch into generated protobuf structs (several allocations per
// span and attribute) and then marshals them, Exporter writes the
// ExportTraceServiceRequest wire format straight from the spans into a buffer that it
// reuses, and posts it with Content-Type application/x-protobuf. The request is the one
// the official exporter sends (the tests compare the two), except that a link's trace
// state, which the official exporter omits, is included.
//
// [NewHTTPExporter] reads the same OTEL_EXPORTER_OTLP_* variables as otlptracehttp, with
// one difference: an invalid value is an error naming the variable, not a logged
// warning. Retries follow otlptracehttp too: 429, 502, 503 and 504 responses and
// failed connections are retried with exponential backoff, honouring Retry-After.
//
// [NewGRPCExporter] sends the same request as the message of TraceService/Export, reads
// the variables as otlptracegrpc does (OTEL_EXPORTER_OTLP_INSECURE included) and retries
// the codes the OTLP specification calls retryable, honouring RetryInfo. Unlike
// otlptracegrpc (and otlptracehttp, which imports the same configuration code) it
// registers no gRPC compressor for the process: with gzip registered, every gRPC call a
// process makes carries a grpc-accept-encoding header, one more header field for both
// ends of every call to handle.
//
// [TracerProvider] is a lean implementation of the OpenTelemetry trace API over an
// Exporter, used by observe.NewTracerProvider when spans go to the default OTLP
// http/protobuf exporter. It skips the SDK's span machinery: a recorded span is a
// ~350-byte struct (the SDK's is ~1 KB, copied into a snapshot at End), queued as it is
// when it ends and encoded by the export goroutine straight from its fields, one
// resource per request and the spans grouped by scope. The requests it sends are the
// ones the SDK with an Exporter sends for the same spans (the tests compare them field
// by field), with the same sampler, span limits and batching options.
package otlp
