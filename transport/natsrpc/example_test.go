package natsrpc_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/natsrpc"
)

// ExampleHandle serves a method on the subject svc.calc.Sum and calls it, on an embedded
// NATS server.
func ExampleHandle() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "natsrpc-example")
	defer os.RemoveAll(dir)
	ns, err := natsserver.Start(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ns.Shutdown(ctx)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()

	type sumReq struct {
		A, B int
	}
	srv := natsrpc.NewServer("calc")
	natsrpc.Handle(srv, "Sum", func(_ context.Context, r sumReq) (int, error) {
		if r.A < 0 {
			return 0, svcerr.Invalid("A", "must not be negative")
		}
		return r.A + r.B, nil
	})
	serving, err := srv.Subscribe(nc) // or srv.Serve(ctx, nc), which drains when ctx ends
	if err != nil {
		fmt.Println(err)
		return
	}
	defer serving.Drain(ctx)
	fmt.Println(srv.Subjects())

	sum := natsrpc.Call[sumReq, int](natsrpc.NewClient(nc, "calc"), "Sum")
	fmt.Println(sum(ctx, sumReq{A: 2, B: 3}))
	_, err = sum(ctx, sumReq{A: -1})
	var e *svcerr.Error
	if errors.As(err, &e) {
		fmt.Println(e.Kind, e.Fields)
	}
	// Output:
	// [svc.calc.Sum]
	// 5 <nil>
	// invalid_argument [{A must not be negative}]
}
