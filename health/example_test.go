package health_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"time"

	"github.com/svckit/svckit/health"
)

func ExampleHealth() {
	h := health.New(health.WithTimeout(time.Second))
	h.AddLiveness("event-loop", func(ctx context.Context) error { return nil })
	h.AddReadiness("db", func(ctx context.Context) error {
		return nil // e.g. db.PingContext(ctx)
	})

	// The admin listener; in a service this is served by the run package.
	srv := httptest.NewServer(health.AdminMux(h, nil))
	defer srv.Close()

	get := func(path string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %d %s", path, resp.StatusCode, body)
	}

	get("/healthz")
	get("/readyz") // the gate starts closed
	h.SetReady(true)
	get("/readyz")
	h.SetReady(false) // shutdown begins
	get("/readyz")

	// Output:
	// /healthz 200 {"status":"ok","checks":{}}
	// /readyz 503 {"status":"fail","checks":{"gate":{"status":"fail","error":"not ready: starting"}}}
	// /readyz 200 {"status":"ok","checks":{}}
	// /readyz 503 {"status":"fail","checks":{"gate":{"status":"fail","error":"not ready: draining"}}}
}

func ExampleHealth_Ready() {
	h := health.New()
	h.AddReadiness("db", func(ctx context.Context) error { return errors.New("connection refused") })
	h.AddReadiness("cache", func(ctx context.Context) error { return nil })
	h.SetReady(true)

	rep := h.Ready(context.Background())
	fmt.Println(rep.Status)
	for name, c := range rep.Failed() {
		fmt.Println(name, c.Error)
	}
	// Output:
	// fail
	// db connection refused
}

func ExampleHealth_Watch() {
	h := health.New()
	h.Watch(func(ready bool) {
		// e.g. grpcHealthServer.SetServingStatus("", SERVING or NOT_SERVING)
		fmt.Println("ready:", ready)
	})
	h.SetReady(true)
	h.SetReady(false)
	// Output:
	// ready: false
	// ready: true
	// ready: false
}
