// Package otlptest is a stand-in OpenTelemetry collector for tests and benchmarks: a
// loopback OTLP/HTTP endpoint that accepts span exports and drops them, so that a
// service under test exports its spans the way a deployed one does (the default OTLP
// http/protobuf exporter, every span sampled) without a collector installed.
package otlptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Discard starts a loopback OTLP/HTTP collector that reads each export request whole and
// answers it with success, and points the process's environment at it:
// OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and
// OTEL_TRACES_SAMPLER=always_on. Tracer providers built afterwards by
// observe.NewTracerProvider (and so every svckit.App) use the lean OTLP provider and export
// to it. The collector stops and the environment is restored when tb's test or benchmark
// ends; like tb.Setenv, Discard cannot be used in parallel tests. It returns the
// collector's URL.
func Discard(tb testing.TB) string {
	tb.Helper()
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	tb.Cleanup(sink.Close)
	tb.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
	tb.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	tb.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	return sink.URL
}
