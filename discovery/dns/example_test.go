package dns_test

import (
	"context"
	"fmt"
	"time"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery/dns"
)

// Following a Kubernetes headless service through its SRV records, and balancing calls
// over its pods.
func Example() {
	w := dns.New(
		dns.WithInterval(5*time.Second),
		dns.WithName(func(svc string) string { return "_grpc._tcp." + svc + ".default.svc.cluster.local" }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := balancer.Watch(ctx, w, "addsvc")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(b.Instances())
}
