package balancer_test

import (
	"context"
	"fmt"
	"net"
	"time"

	grpcgo "google.golang.org/grpc"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/resilience"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// A load-balanced gRPC client: discovery feeds the balancer, a pool keeps one connection
// per instance, and each call goes through retry, the balancer's pick and a per-instance
// circuit breaker to the instance's client.
func Example() {
	// Two addsvc instances on loopback, registered in a static registry.
	reg := discovery.NewStatic()
	for i := range 2 {
		addr, stop := serveAddsvc()
		defer stop()
		reg.Register(context.Background(), discovery.Instance{Service: "addsvc", ID: fmt.Sprint("a", i), Addr: addr}, 0)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := balancer.Watch(ctx, reg, "addsvc", balancer.WithPolicy(balancer.P2C))
	if err != nil {
		fmt.Println(err)
		return
	}
	pool := balancer.NewConnPool(b)
	defer pool.Close()
	breaker := resilience.NewBreaker(resilience.BreakerConfig{})
	b.OnRemove(breaker.Forget)

	sum := balancer.Endpoint(endpoint.Info{Service: "addsvc", Method: "Sum", Transport: "grpc", Idempotent: true}, b,
		func(inst discovery.Instance) (endpoint.Endpoint[addsvc.SumRequest, addsvc.SumResponse], error) {
			cc, err := pool.Get(inst.Addr)
			if err != nil {
				return nil, err
			}
			return addsvc.NewGRPCClient(cc, sgrpc.WithClientMiddleware(breaker.Middleware())).Sum, nil
		},
		resilience.Retry(resilience.RetryConfig{AttemptTimeout: time.Second}))

	for i := range 4 {
		resp, err := sum(ctx, addsvc.SumRequest{A: int64(i), B: 10})
		fmt.Println(resp.V, err)
	}
	calls := int64(0)
	for _, s := range b.Stats() {
		calls += s.Calls
	}
	fmt.Println("calls:", calls)
	// Output:
	// 10 <nil>
	// 11 <nil>
	// 12 <nil>
	// 13 <nil>
	// calls: 4
}

// Canary routing: 5% of the calls, and every call with the header "x-canary: 1", go to
// the instances of version v2.
func ExampleWithRules() {
	b := balancer.New("addsvc",
		balancer.WithRules(
			balancer.HeaderRule("x-canary", "1", "v2"),
			balancer.WeightRule("v2", 5)))
	b.Update([]discovery.Instance{
		{Service: "addsvc", ID: "stable", Addr: "10.0.0.1:8081", Metadata: map[string]string{discovery.MetaVersion: "v1"}},
		{Service: "addsvc", ID: "canary", Addr: "10.0.0.2:8081", Metadata: map[string]string{discovery.MetaVersion: "v2"}},
	})
	// A gRPC caller sets the header as outgoing metadata; WithRoute works on any transport.
	ctx := balancer.WithRoute(context.Background(), "x-canary", "1")
	inst, done, err := b.Pick(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	done(nil)
	fmt.Println(inst.ID)
	// Output:
	// canary
}

// serveAddsvc serves addsvc over gRPC on a loopback port.
func serveAddsvc() (addr string, stop func()) {
	s := sgrpc.NewServer(addsvc.GRPCService)
	addsvc.RegisterGRPC(s, addsvc.MakeEndpoints(addsvc.New()))
	g := grpcgo.NewServer()
	s.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() { _ = g.Serve(ln) }()
	return ln.Addr().String(), g.Stop
}
