package loadgen_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/loadgen"
)

func TestRun(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if n.Add(1)%10 == 0 {
			http.Error(w, "every tenth fails", http.StatusServiceUnavailable)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 4, Duration: time.Minute, Requests: 200,
		Next: func(w int, seq int64) loadgen.Request {
			return loadgen.Request{URL: srv.URL, Body: []byte(`{"x":1}`)}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.Failures != 20 || res.ByStatus[200] != 180 || res.ByStatus[503] != 20 ||
		len(res.FailedByStatus) != 1 || res.FailedByStatus[503] != 20 {
		t.Fatalf("result %+v", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Rate <= 0 || !strings.Contains(res.LastError, "503") {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.String(), "failures 20") {
		t.Fatalf("String() = %s", res)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 2, Duration: 200 * time.Millisecond,
		Next: func(int, int64) loadgen.Request { return loadgen.Request{Method: "GET", URL: srv.URL} },
	})
	if err != nil || res.Requests == 0 || res.Failures != 0 {
		t.Fatalf("%+v %v", res, err)
	}
}
