package discovery_test

import (
	"context"
	"fmt"
	"time"

	"github.com/svckit/svckit/discovery"
)

// A Static registry: a fixed list, plus what registers in-process. Watchers get the whole
// set at once and again after every change.
func ExampleStatic() {
	reg := discovery.NewStatic(discovery.Instance{Service: "payments", ID: "p1", Addr: "10.0.0.1:8081"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, _ := reg.Watch(ctx, "payments")
	fmt.Println(len(<-ch), "instance")

	r, _ := reg.Register(ctx, discovery.Instance{
		Service:  "payments",
		Addr:     "10.0.0.2:8081",
		Metadata: map[string]string{discovery.MetaVersion: "v2", discovery.MetaZone: "eu-1"},
	}, discovery.DefaultTTL)
	for _, in := range <-ch {
		fmt.Printf("%s %s version=%q\n", in.ID, in.Addr, in.Version())
	}
	_ = r.Deregister(ctx)
	fmt.Println(len(<-ch), "instance")
	// Output:
	// 1 instance
	// 10_0_0_2_8081 10.0.0.2:8081 version="v2"
	// p1 10.0.0.1:8081 version=""
	// 1 instance
}

// Keep gives a new backend its heartbeat: Register once, Refresh every TTL/3, and register
// again with backoff after failures, until Deregister.
func ExampleKeep() {
	lease := printLease{}
	reg, err := discovery.Keep(context.Background(), discovery.Instance{Service: "s", ID: "a", Addr: "h:1"}, lease,
		discovery.KeepOptions{TTL: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = reg.Deregister(context.Background())
	// Output:
	// register
	// deregister
}

type printLease struct{}

func (printLease) Register(context.Context) error   { fmt.Println("register"); return nil }
func (printLease) Refresh(context.Context) error    { fmt.Println("refresh"); return nil }
func (printLease) Deregister(context.Context) error { fmt.Println("deregister"); return nil }
