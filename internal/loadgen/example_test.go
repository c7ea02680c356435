package loadgen_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/svckit/svckit/internal/loadgen"
)

// Run sends 50 POSTs with a templated body at a fixed 500 calls per second: each call's
// latency counts from its intended send time, so a stall in the server shows in the
// percentiles and in Late instead of silently slowing the schedule.
func ExampleRun() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	body, err := loadgen.ParseTemplate("body", `{"id":"order-{{.N}}","quantity":{{randInt 1 5}}}`)
	if err != nil {
		panic(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		Concurrency: 8, Rate: 500, Requests: 50, Duration: 10 * time.Second,
		Next: func(worker int, seq int64) loadgen.Request {
			b, _ := body.Render(seq, worker)
			return loadgen.Request{Method: http.MethodPost, URL: srv.URL + "/orders", Body: b}
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Requests, "calls,", res.Failures, "failures, by status:", res.ByStatus)
	fmt.Println("p50 ≤ p90 ≤ p99 ≤ max:", res.P50 <= res.P90 && res.P90 <= res.P99 && res.P99 <= res.Max)
	// Output:
	// 50 calls, 0 failures, by status: map[201:50]
	// p50 ≤ p90 ≤ p99 ≤ max: true
}

// A template renders a different body for each call: {{.N}} numbers the calls and mod
// makes a mix, here one call in three for a product that does not exist.
func ExampleParseTemplate() {
	t, err := loadgen.ParseTemplate("body", `{"id":"{{if eq (mod .N 3) 2}}sku-nope{{else}}sku-{{.N}}{{end}}"}`)
	if err != nil {
		panic(err)
	}
	for n := range int64(4) {
		b, _ := t.Render(n, 0)
		fmt.Println(string(b))
	}
	// Output:
	// {"id":"sku-0"}
	// {"id":"sku-1"}
	// {"id":"sku-nope"}
	// {"id":"sku-3"}
}
