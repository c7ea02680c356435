package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	shttp "github.com/svckit/svckit/transport/http"
)

// bareSum is the bare net/http handler the benchmarks compare svckit's server with:
// method routing by the ServeMux, a JSON decoder with a body limit, a JSON encoder.
func bareSum(w http.ResponseWriter, r *http.Request) {
	var req sumReq
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(sumResp{V: req.A + req.B})
}

// BenchmarkServe compares one in-process JSON request through a bare net/http handler and
// through a Server without middleware, for a small response and for a 4 KiB one that a
// client taking gzip gets compressed. The network is left out.
func BenchmarkServe(b *testing.B) {
	big := strings.Repeat("svckit ", 600)
	bare := http.NewServeMux()
	bare.HandleFunc("POST /sum", bareSum)
	bare.HandleFunc("POST /big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"text": big})
	})
	s := shttp.NewServer("bench")
	shttp.Handle(s, "POST /sum", "Sum", func(_ context.Context, r sumReq) (sumResp, error) {
		return sumResp{V: r.A + r.B}, nil
	})
	shttp.Handle(s, "POST /big", "Big", func(context.Context, struct{}) (map[string]string, error) {
		return map[string]string{"text": big}, nil
	})
	for _, tc := range []struct {
		name, path, accept string
	}{{"sum", "/sum", ""}, {"big", "/big", ""}, {"big-gzip", "/big", "gzip"}} {
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"bare", bare}, {"svckit", s}} {
			b.Run(tc.name+"/"+h.name, func(b *testing.B) {
				b.ReportAllocs()
				body := []byte(`{"a":1,"b":2}`)
				for b.Loop() {
					req := httptest.NewRequest(http.MethodPost, tc.path, bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					if tc.accept != "" {
						req.Header.Set("Accept-Encoding", tc.accept)
					}
					rec := httptest.NewRecorder()
					h.h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
		}
	}
}
