package svckit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
)

// discardExporter receives batches of spans and drops them, so the benchmark pays for span
// creation, batching and export hand-off but not for a network round trip.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

func benchServe(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	body := `{"a":1,"b":2}`
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/sum", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkHTTPHandler compares the in-process cost of one JSON sum request through a bare
// net/http handler and through svckit's full production stack (request id, trace context,
// tracing at 100% sampling into a batch processor, JSON access log, metrics, timeout,
// recovery). The network is left out; bench/run.sh measures it with real load.
func BenchmarkHTTPHandler(b *testing.B) {
	b.Run("bare", func(b *testing.B) {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /sum", func(w http.ResponseWriter, r *http.Request) {
			var req addsvc.SumRequest
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(addsvc.SumResponse{V: req.A + req.B})
		})
		benchServe(b, mux)
	})
	b.Run("svckit", func(b *testing.B) {
		b.Setenv("OTEL_TRACES_SAMPLER", "always_on")
		app, err := svckit.New(context.Background(), "addsvc", &svckit.Config{}, svckit.Options{
			Stdout: io.Discard, Args: []string{}, Env: func(string) (string, bool) { return "", false },
			SpanExporter: discardExporter{}, Signals: []os.Signal{},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer app.TracerProvider().Shutdown(context.Background())
		addsvc.RegisterHTTP(app.HTTP(), addsvc.MakeEndpoints(addsvc.New()))
		benchServe(b, app.HTTP())
	})
}
