package balancer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/endpoint"
)

// BenchmarkPick measures one Pick and its done call, the balancer's whole cost per call,
// for each policy, with and without routing rules, sequentially and in parallel.
func BenchmarkPick(b *testing.B) {
	var instances []discovery.Instance
	for i := range 10 {
		v := "v1"
		if i == 9 {
			v = "v2"
		}
		instances = append(instances, discovery.Instance{Service: "svc", ID: fmt.Sprint(i), Addr: fmt.Sprint("10.0.0.", i, ":80"),
			Metadata: map[string]string{discovery.MetaVersion: v}})
	}
	cases := []struct {
		name string
		opts []balancer.Option
	}{
		{"p2c", nil},
		{"round_robin", []balancer.Option{balancer.WithPolicy(balancer.RoundRobin)}},
		{"p2c+rules", []balancer.Option{balancer.WithRules(balancer.HeaderRule("x-canary", "1", "v2"), balancer.WeightRule("v2", 5))}},
	}
	for _, c := range cases {
		bal := balancer.New("svc", c.opts...)
		bal.Update(instances)
		ctx := context.Background()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, done, err := bal.Pick(ctx)
				if err != nil {
					b.Fatal(err)
				}
				done(nil)
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, _ := bal.Pick(ctx)
					done(nil)
				}
			})
		})
	}
}

// BenchmarkEndpoint measures the balancer's middleware and dispatch around an endpoint
// that does nothing: Attempts, Middleware (pick, context values, done) and Dispatch.
func BenchmarkEndpoint(b *testing.B) {
	bal := balancer.New("svc")
	bal.Update([]discovery.Instance{{Service: "svc", ID: "a", Addr: "a:1"}, {Service: "svc", ID: "b", Addr: "b:1"}})
	nop := func(context.Context, int) (int, error) { return 1, nil }
	e := balancer.Endpoint(endpoint.Info{Service: "svc", Method: "M"}, bal,
		func(discovery.Instance) (endpoint.Endpoint[int, int], error) { return nop, nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e(ctx, 1); err != nil {
			b.Fatal(err)
		}
	}
}
