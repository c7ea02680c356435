package observe

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestStackConcurrent(t *testing.T) {
	tp, rec := newRecorder(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := NewLogger(&logs, LogOptions{Service: "greeter"})
	kinds := []svcerr.Kind{svcerr.NotFound, svcerr.Internal, svcerr.Unavailable, svcerr.InvalidArgument}
	ep := func(_ context.Context, i int) (int, error) {
		if i%2 == 0 {
			return i, nil
		}
		return 0, svcerr.New(kinds[i%len(kinds)], "x")
	}
	e := endpoint.Wrap(endpoint.Info{Service: "s", Method: "M", Transport: "http"}, ep,
		Tracing(tp), AccessLog(logger), m.Middleware())

	const workers, calls = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			ctx := meta.WithRequestID(context.Background(), meta.NewRequestID())
			for i := range calls {
				_, _ = e(ctx, w*calls+i)
			}
		})
	}
	wg.Wait()

	const total = workers * calls
	if n := len(rec.Ended()); n != total {
		t.Errorf("%d spans, want %d", n, total)
	}
	if n := len(jsonLines(t, &logs.b)); n != total {
		t.Errorf("%d log lines, want %d", n, total)
	}
	fams := gather(t, reg)
	if v := findMetric(fams, "svckit_requests_total", nil).GetCounter().GetValue(); v != total {
		t.Errorf("requests_total = %v, want %d", v, total)
	}
	var errs float64
	for _, f := range fams {
		if f.GetName() == "svckit_request_errors_total" {
			for _, mm := range f.GetMetric() {
				errs += mm.GetCounter().GetValue()
			}
		}
	}
	if errs != total/2 {
		t.Errorf("errors = %v, want %d", errs, total/2)
	}
}
