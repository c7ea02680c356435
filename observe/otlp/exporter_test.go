package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// fastRetry retries quickly, for tests.
var fastRetry = WithRetry(RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxElapsedTime: 10 * time.Second})

func oneSpan(t testing.TB) []sdktrace.ReadOnlySpan { return fixture(t).Snapshots()[1:2] }

func TestRetryHonoursRetryAfter(t *testing.T) {
	c := newCollector(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			http.Error(w, "still busy", http.StatusServiceUnavailable)
		}
	})
	exp := newTestExporter(t, WithEndpointURL(c.URL), fastRetry)
	start := time.Now()
	if err := exp.ExportSpans(t.Context(), oneSpan(t)); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	reqs := c.got()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	if elapsed < time.Second {
		t.Errorf("done in %v, before the Retry-After of 1s", elapsed)
	}
	for _, r := range reqs[1:] {
		if !bytes.Equal(r.raw, reqs[0].raw) {
			t.Error("a retry sent a different body")
		}
	}
}

func TestRetryableStatuses(t *testing.T) {
	for _, tt := range []struct {
		code  int
		retry bool
	}{
		{http.StatusTooManyRequests, true},
		{http.StatusBadGateway, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusGatewayTimeout, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusNotFound, false},
		{http.StatusRequestEntityTooLarge, false},
		{http.StatusInternalServerError, false},
	} {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			c := newCollector(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					http.Error(w, "no: "+strings.Repeat("detail ", 200), tt.code)
				}
			})
			exp := newTestExporter(t, WithEndpointURL(c.URL), fastRetry)
			err := exp.ExportSpans(t.Context(), oneSpan(t))
			want := 1
			if tt.retry {
				want = 2
				if err != nil {
					t.Fatal(err)
				}
			} else {
				if err == nil {
					t.Fatal("no error")
				}
				msg := err.Error()
				if !strings.Contains(msg, http.StatusText(tt.code)) || !strings.Contains(msg, "no: detail") ||
					!strings.Contains(msg, c.URL) || len(msg) > 1000 || strings.Contains(msg, "\n") {
					t.Errorf("error %q: want one line with the status, the URL and a snippet of the body", msg)
				}
			}
			if n := len(c.got()); n != want {
				t.Errorf("%d requests, want %d", n, want)
			}
		})
	}
}

// TestRetryConnectionError drops the first connection without a response.
func TestRetryConnectionError(t *testing.T) {
	c := newCollector(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}
	})
	exp := newTestExporter(t, WithEndpointURL(c.URL), fastRetry)
	if err := exp.ExportSpans(t.Context(), oneSpan(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(c.got()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestRetryBounds(t *testing.T) {
	unavailable := func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}
	t.Run("max elapsed time", func(t *testing.T) {
		c := newCollector(t, unavailable)
		exp := newTestExporter(t, WithEndpointURL(c.URL),
			WithRetry(RetryConfig{Enabled: true, InitialInterval: 20 * time.Millisecond, MaxInterval: 40 * time.Millisecond, MaxElapsedTime: 300 * time.Millisecond}))
		start := time.Now()
		err := exp.ExportSpans(t.Context(), oneSpan(t))
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("gave up after %v", d)
		}
		if n := len(c.got()); n < 3 {
			t.Errorf("%d requests, want several", n)
		}
	})
	t.Run("context deadline before Retry-After", func(t *testing.T) {
		c := newCollector(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "30")
			unavailable(w, r, n)
		})
		exp := newTestExporter(t, WithEndpointURL(c.URL), fastRetry)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		if err := exp.ExportSpans(ctx, oneSpan(t)); err == nil {
			t.Fatal("no error")
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("returned after %v; the retry could never be before the deadline", d)
		}
		if n := len(c.got()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
	t.Run("context cancelled while waiting", func(t *testing.T) {
		c := newCollector(t, unavailable)
		exp := newTestExporter(t, WithEndpointURL(c.URL),
			WithRetry(RetryConfig{Enabled: true, InitialInterval: time.Hour, MaxInterval: time.Hour}))
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		if err := exp.ExportSpans(ctx, oneSpan(t)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		c := newCollector(t, unavailable)
		exp := newTestExporter(t, WithEndpointURL(c.URL))
		if err := exp.ExportSpans(t.Context(), oneSpan(t)); err == nil {
			t.Fatal("no error")
		}
		if n := len(c.got()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		v        string
		min, max time.Duration
	}{
		{"", 0, 0},
		{"0", 0, 0},
		{"7", 7 * time.Second, 7 * time.Second},
		{"-3", 0, 0},
		{"soon", 0, 0},
		{"99999999999999999", 1<<63 - 1, 1<<63 - 1},
		{time.Now().Add(time.Minute).UTC().Format(http.TimeFormat), 58 * time.Second, time.Minute},
		{time.Now().Add(-time.Minute).UTC().Format(http.TimeFormat), 0, 0},
	} {
		if got := retryAfter(tt.v); got < tt.min || got > tt.max {
			t.Errorf("retryAfter(%q) = %v, want %v to %v", tt.v, got, tt.min, tt.max)
		}
	}
}

func TestPartialSuccess(t *testing.T) {
	respond := func(resp *coltracepb.ExportTraceServiceResponse) func(http.ResponseWriter, *http.Request, int) {
		return func(w http.ResponseWriter, r *http.Request, _ int) {
			b, _ := proto.Marshal(resp)
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(b)
		}
	}
	for _, tt := range []struct {
		name string
		resp *coltracepb.ExportTraceServiceResponse
		err  string
	}{
		{"empty", &coltracepb.ExportTraceServiceResponse{}, ""},
		{"empty partial success", &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{}}, ""},
		{"rejected", &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: 3, ErrorMessage: "too old"}}, "3 spans rejected: too old"},
		{"message only", &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{ErrorMessage: "careful"}}, "careful"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(t, respond(tt.resp))
			exp := newTestExporter(t, WithEndpointURL(c.URL), fastRetry)
			err := exp.ExportSpans(t.Context(), oneSpan(t))
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
			if n := len(c.got()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	t.Run("later exports fail", func(t *testing.T) {
		c := newCollector(t, nil)
		exp := newTestExporter(t, WithEndpointURL(c.URL))
		if err := exp.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := exp.ExportSpans(t.Context(), oneSpan(t)); !errors.Is(err, ErrShutdown) {
			t.Fatalf("export after shutdown: %v, want ErrShutdown", err)
		}
		if err := exp.ExportSpans(t.Context(), nil); !errors.Is(err, ErrShutdown) {
			t.Fatalf("empty export after shutdown: %v, want ErrShutdown", err)
		}
		if err := exp.Shutdown(t.Context()); err != nil {
			t.Fatalf("second shutdown: %v", err)
		}
		if n := len(c.got()); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
	t.Run("waits for exports in flight", func(t *testing.T) {
		arrived := make(chan struct{})
		var answered atomic.Bool
		c := newCollector(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			close(arrived)
			time.Sleep(200 * time.Millisecond)
			answered.Store(true)
		})
		exp := newTestExporter(t, WithEndpointURL(c.URL))
		done := make(chan error, 1)
		go func() { done <- exp.ExportSpans(context.Background(), oneSpan(t)) }()
		<-arrived
		if err := exp.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		// The export's goroutine hands its result over only after the exporter has let
		// Shutdown go, so the proof that Shutdown waited is that the collector had
		// answered the request in flight by the time it returned.
		if !answered.Load() {
			t.Fatal("Shutdown returned before the export in flight ended")
		}
		if err := <-done; err != nil {
			t.Fatalf("export in flight: %v", err)
		}
	})
	t.Run("interrupts exports when its context ends", func(t *testing.T) {
		arrived := make(chan struct{})
		release := make(chan struct{})
		defer close(release)
		c := newCollector(t, func(w http.ResponseWriter, r *http.Request, _ int) {
			close(arrived)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		exp := newTestExporter(t, WithEndpointURL(c.URL), WithTimeout(0), fastRetry)
		done := make(chan error, 1)
		go func() { done <- exp.ExportSpans(context.Background(), oneSpan(t)) }()
		<-arrived
		shutdownInterrupts(t, exp, done)
	})
}

// TestConcurrentExports exports from several goroutines at once (run with -race) and
// checks that every batch arrives intact, encoded as a fresh encoder encodes it.
func TestConcurrentExports(t *testing.T) {
	c := newCollector(t, nil)
	exp := newTestExporter(t, WithEndpointURL(c.URL), WithGzip(true))
	const workers, batches = 6, 15
	var wg sync.WaitGroup
	want := make(map[string]int)
	for w := range workers {
		g := newGen(uint64(100 + w))
		var all [][]sdktrace.ReadOnlySpan
		for range batches {
			spans := make([]sdktrace.ReadOnlySpan, 1+g.r.IntN(100))
			for i := range spans {
				spans[i] = g.span().Snapshot()
			}
			var enc encoder
			enc.encode(spans)
			want[string(enc.bytes())]++
			all = append(all, spans)
		}
		wg.Go(func() {
			for _, spans := range all {
				if err := exp.ExportSpans(t.Context(), spans); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	reqs := c.got()
	if len(reqs) != workers*batches {
		t.Fatalf("%d requests, want %d", len(reqs), workers*batches)
	}
	for _, r := range reqs {
		if want[string(r.body)] == 0 {
			t.Fatal("a request that no batch encodes to")
		}
		want[string(r.body)]--
	}
}
