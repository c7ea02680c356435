package devrun

import (
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/observe"
)

// encodingRecorder records the Content-Encoding a handler answered with.
type encodingRecorder struct {
	http.ResponseWriter
	mu      *sync.Mutex
	got     *[]string
	written bool
}

func (w *encodingRecorder) WriteHeader(code int) {
	if !w.written {
		w.written = true
		w.mu.Lock()
		*w.got = append(*w.got, w.Header().Get("Content-Encoding"))
		w.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *encodingRecorder) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// TestScrapeUncompressed: svckit dev's scrape asks for an uncompressed page (promhttp
// gzips every page for Go's client otherwise, which asks for gzip by itself: CPU spent on
// both sides of the loopback for nothing), and refuses a page compressed anyway with a
// precise error rather than parsing its bytes.
func TestScrapeUncompressed(t *testing.T) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "svckit_requests_total", Help: "h"},
		[]string{"service", "transport", "side", "method"})
	reg.MustRegister(requests)
	requests.WithLabelValues("orders", "grpc", "server", "PlaceOrder").Add(3)
	metrics := observe.MetricsHandler(reg)

	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request)
		wantErr string
	}{
		{name: "promhttp", handler: metrics.ServeHTTP},
		{name: "gzip regardless", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write([]byte("svckit_requests_total{service=\"orders\",transport=\"grpc\",side=\"server\",method=\"PlaceOrder\"} 3\n"))
			_ = zw.Close()
		}, wantErr: `Content-Encoding "gzip"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var encodings, accepts []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				accepts = append(accepts, r.Header.Get("Accept-Encoding"))
				mu.Unlock()
				tc.handler(&encodingRecorder{ResponseWriter: w, mu: &mu, got: &encodings}, r)
			}))
			defer srv.Close()
			m := NewMetricsStore(&System{})
			sc, err := m.scrape(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
			mu.Lock()
			defer mu.Unlock()
			if len(accepts) != 1 || accepts[0] != "identity" {
				t.Errorf("Accept-Encoding %q; want identity", accepts)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("scrape error %v; want one saying %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(encodings) != 1 || encodings[0] != "" {
				t.Errorf("the service answered with Content-Encoding %q; want none", encodings)
			}
			if len(sc.requests) != 1 {
				t.Errorf("%d request series; want 1: %v", len(sc.requests), sc.requests)
			}
			for k, v := range sc.requests {
				if v != 3 {
					t.Errorf("%v = %v; want 3", k, v)
				}
			}
		})
	}
}
