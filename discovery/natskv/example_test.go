package natskv_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/natsserver"
)

// A registry in the key-value store of an embedded NATS server: one instance registers
// (with a heartbeat), a client watches, the instance deregisters at shutdown.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "natskv-example")
	defer os.RemoveAll(dir)
	srv, err := natsserver.Start(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(ctx)
	nc, err := srv.Connect(nats.MaxReconnects(-1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	reg, err := natskv.New(ctx, nc)
	if err != nil {
		fmt.Println(err)
		return
	}

	// In the service: register at ready, deregister at shutdown.
	r, err := reg.Register(ctx, discovery.Instance{Service: "addsvc", ID: "a1", Addr: "127.0.0.1:8081",
		Metadata: map[string]string{discovery.MetaVersion: "v1"}}, 10*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}

	// In a client: watch.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, _ := reg.Watch(wctx, "addsvc")
	for set := range ch {
		if len(set) == 1 {
			fmt.Println(set[0].ID, set[0].Addr, set[0].Version())
			break
		}
	}
	_ = r.Deregister(ctx)
	for set := range ch {
		if len(set) == 0 {
			fmt.Println("gone")
			break
		}
	}
	// Output:
	// a1 127.0.0.1:8081 v1
	// gone
}
