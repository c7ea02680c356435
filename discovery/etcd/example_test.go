package etcd_test

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/etcd"
)

// Registering in etcd under a lease that a heartbeat keeps alive, and watching.
func Example() {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	reg := etcd.New(c)
	ctx := context.Background()
	r, err := reg.Register(ctx, discovery.Instance{Service: "addsvc", Addr: "10.0.0.7:8081"}, 15*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Deregister(ctx)
	ch, _ := reg.Watch(ctx, "addsvc")
	fmt.Println(<-ch)
}
