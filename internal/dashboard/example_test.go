package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// Example mounts the dashboard on `svckit dev`'s collector listener, as the command does:
//
//	sys, err := devrun.Start(ctx, devrun.Options{Dir: ".", Handler: func(s *devrun.System) http.Handler {
//		return dashboard.Handler(s, dashboard.WithDevToken(token))
//	}})
//
// Here it serves the stores of a system without processes and answers a log query.
func Example() {
	m := &devrun.Manifest{Name: "shop", Services: []devrun.Service{{Name: "orders", Replicas: 1}}}
	sys := &devrun.System{Manifest: m, Logs: devrun.NewLogStore(0), Traces: devrun.NewTraceStore(0)}
	sys.Metrics = devrun.NewMetricsStore(sys)
	sys.Logs.Add("orders", "orders-1", "stdout", `{"level":"INFO","msg":"order placed","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)
	sys.Logs.Add("orders", "orders-1", "stdout", `{"level":"ERROR","msg":"payment failed","trace_id":"00f067aa0ba902b7a3ce929d0e0e4736"}`)

	srv := httptest.NewServer(dashboard.Handler(sys, dashboard.WithEventSource(nil)))
	defer srv.Close()

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet,
		srv.URL+"/api/logs?service=orders&trace_id=4bf92f3577b34da6a3ce929d0e0e4736", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var lines []devrun.LogLine
	if err := json.NewDecoder(resp.Body).Decode(&lines); err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range lines {
		fmt.Println(l.Instance, l.Level, l.Msg)
	}
	// Output:
	// orders-1 INFO order placed
}
