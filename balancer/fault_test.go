package balancer_test

import (
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// fault is how a test instance misbehaves.
type fault int32

const (
	healthy fault = iota
	flaky         // half of the calls fail with Unavailable
	hanging       // calls never return; the client's timeout ends them
	failing       // every call fails with Unavailable
)

// instance is a real addsvc gRPC server on loopback whose behaviour a test can change.
type instance struct {
	addr  string
	id    string
	fault atomic.Int32
	calls atomic.Int64
	srv   *grpcgo.Server
}

func (in *instance) set(f fault) { in.fault.Store(int32(f)) }

// kill stops the server at once: open connections break and new ones are refused.
func (in *instance) kill() { in.srv.Stop() }

func (in *instance) middleware(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, req any) (any, error) {
		in.calls.Add(1)
		switch fault(in.fault.Load()) {
		case flaky:
			if rand.IntN(2) == 0 {
				return nil, svcerr.New(svcerr.Unavailable, "flaky instance "+in.id)
			}
		case failing:
			return nil, svcerr.New(svcerr.Unavailable, "failing instance "+in.id)
		case hanging:
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return next(ctx, req)
	}
}

// startInstance serves addsvc on 127.0.0.1:0 until the test ends.
func startInstance(t testing.TB, id string, f fault) *instance {
	t.Helper()
	in := &instance{id: id}
	in.set(f)
	s := sgrpc.NewServer(addsvc.GRPCService, sgrpc.WithMiddleware(in.middleware))
	addsvc.RegisterGRPC(s, addsvc.MakeEndpoints(addsvc.New()))
	in.srv = grpcgo.NewServer()
	s.Register(in.srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.addr = ln.Addr().String()
	go func() { _ = in.srv.Serve(ln) }()
	t.Cleanup(in.srv.Stop)
	return in
}

// retry is the resilience package's retry middleware for the tests: up to attempts tries,
// short backoff, and a budget large enough that every failed attempt may be retried (the
// tests measure the balancer, not the budget).
func retry(attempts int) endpoint.Middleware {
	return resilience.Retry(resilience.RetryConfig{
		MaxAttempts: attempts,
		BaseDelay:   time.Millisecond,
		MaxDelay:    5 * time.Millisecond,
		Budget:      resilience.NewBudget(resilience.BudgetConfig{Ratio: 1, MaxTokens: 1000, MinPerSecond: 100}),
	})
}

// sumClient returns a load-balanced Sum endpoint over b with a per-attempt timeout.
func sumClient(t testing.TB, b *balancer.Balancer, timeout time.Duration, mws ...endpoint.Middleware) endpoint.Endpoint[addsvc.SumRequest, addsvc.SumResponse] {
	return sumClientWith(t, b, timeout, nil, mws...)
}

// sumClientWith is sumClient with per-instance middleware inside the pick (a breaker).
func sumClientWith(t testing.TB, b *balancer.Balancer, timeout time.Duration, inner []endpoint.Middleware, mws ...endpoint.Middleware) endpoint.Endpoint[addsvc.SumRequest, addsvc.SumResponse] {
	pool := balancer.NewConnPool(b)
	t.Cleanup(func() { _ = pool.Close() })
	factory := func(inst discovery.Instance) (endpoint.Endpoint[addsvc.SumRequest, addsvc.SumResponse], error) {
		cc, err := pool.Get(inst.Addr)
		if err != nil {
			return nil, err
		}
		copts := []sgrpc.ClientOption{sgrpc.WithClientMiddleware(inner...)}
		if timeout > 0 {
			copts = append(copts, sgrpc.WithClientMiddleware(resilience.Timeout(timeout)))
		}
		return addsvc.NewGRPCClient(cc, copts...).Sum, nil
	}
	info := endpoint.Info{Service: "addsvc", Method: "Sum", Transport: "grpc", Idempotent: true}
	return balancer.Endpoint(info, b, factory, mws...)
}

func instancesOf(ins ...*instance) []discovery.Instance {
	out := make([]discovery.Instance, len(ins))
	for i, in := range ins {
		out[i] = discovery.Instance{Service: "addsvc", ID: in.id, Addr: in.addr}
	}
	return out
}

func statOf(b *balancer.Balancer, id string) balancer.Stat {
	for _, s := range b.Stats() {
		if s.Instance.ID == id {
			return s
		}
	}
	return balancer.Stat{}
}

// TestFaultInjection runs concurrent callers against five real instances: two healthy, one
// failing half of its calls, one hanging, and one killed part way. With a per-attempt
// timeout and three attempts per call, at least 99% of the calls must succeed, and the bad
// instances must have been ejected.
func TestFaultInjection(t *testing.T) {
	tests := []struct {
		name    string
		policy  balancer.Policy
		breaker bool
	}{
		{"p2c", balancer.P2C, false},
		{"round_robin", balancer.RoundRobin, false},
		{"p2c+breaker", balancer.P2C, true},
	}
	for _, tt := range tests {
		policy := tt.policy
		t.Run(tt.name, func(t *testing.T) {
			good1 := startInstance(t, "good1", healthy)
			good2 := startInstance(t, "good2", healthy)
			flakyIn := startInstance(t, "flaky", flaky)
			hang := startInstance(t, "hang", hanging)
			victim := startInstance(t, "victim", healthy)

			reg := discovery.NewStatic(instancesOf(good1, good2, flakyIn, hang, victim)...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var ejectMu sync.Mutex
			ejected := map[string]int{}
			b, err := balancer.Watch(ctx, reg, "addsvc",
				balancer.WithPolicy(policy),
				balancer.WithEjection(balancer.Ejection{Base: 300 * time.Millisecond, Max: 2 * time.Second}),
				balancer.WithOnEject(func(inst discovery.Instance, _ time.Duration) {
					ejectMu.Lock()
					ejected[inst.ID]++
					ejectMu.Unlock()
				}))
			if err != nil {
				t.Fatal(err)
			}
			var inner []endpoint.Middleware
			if tt.breaker {
				br := resilience.NewBreaker(resilience.BreakerConfig{OpenFor: 300 * time.Millisecond})
				b.OnRemove(br.Forget)
				inner = append(inner, br.Middleware())
			}
			sum := sumClientWith(t, b, 200*time.Millisecond, inner, retry(3))

			// Each caller makes at least perCaller calls and goes on for at least 2s, long
			// enough for ejected instances to be readmitted on probation (after 300ms) and,
			// still bad, ejected again.
			const callers, perCaller = 8, 150
			var ok, failed atomic.Int64
			var wg sync.WaitGroup
			var killOnce sync.Once
			start := time.Now()
			for c := range callers {
				wg.Go(func() {
					for i := 0; i < perCaller || time.Since(start) < 2*time.Second; i++ {
						if c == 0 && i == perCaller/3 {
							killOnce.Do(victim.kill)
						}
						resp, err := sum(ctx, addsvc.SumRequest{A: int64(i), B: 1})
						if err != nil || resp.V != int64(i)+1 {
							failed.Add(1)
							t.Logf("call failed: %v", err)
							continue
						}
						ok.Add(1)
					}
				})
			}
			wg.Wait()
			total := ok.Load() + failed.Load()
			rate := float64(ok.Load()) / float64(total)
			t.Logf("%s: %d/%d calls succeeded (%.2f%%)", tt.name, ok.Load(), total, 100*rate)
			for _, s := range b.Stats() {
				t.Logf("  %-7s calls=%4d failures=%3d ejections=%d latency=%v", s.Instance.ID, s.Calls, s.Failures, s.Ejections, s.Latency)
			}
			if rate < 0.99 {
				t.Errorf("success rate %.4f, want >= 0.99", rate)
			}
			ejectMu.Lock()
			defer ejectMu.Unlock()
			for _, id := range []string{"hang", "victim"} {
				if ejected[id] < 2 {
					t.Errorf("instance %s was ejected %d times, want at least 2 (ejected, readmitted, ejected again)", id, ejected[id])
				}
			}
			if ejected["flaky"] == 0 {
				t.Error("the flaky instance was never ejected")
			}
			for _, id := range []string{"good1", "good2"} {
				if ejected[id] != 0 {
					// Possible on a starved machine (the race detector on two busy cores),
					// where a healthy call can outlast the attempt timeout.
					t.Logf("healthy instance %s was ejected %d times", id, ejected[id])
				}
			}
			if g := statOf(b, "good1").Calls + statOf(b, "good2").Calls; g < total/2 {
				t.Errorf("healthy instances took %d of %d calls, want most", g, total)
			}
		})
	}
}

// TestFlakyInstanceEjected checks that an instance failing half of its calls gets ejected,
// and that the callers, with retries, still succeed.
func TestFlakyInstanceEjected(t *testing.T) {
	good := startInstance(t, "good", healthy)
	bad := startInstance(t, "flaky", flaky)
	b := balancer.New("addsvc", balancer.WithPolicy(balancer.RoundRobin),
		balancer.WithEjection(balancer.Ejection{Window: 10, Ratio: 0.3, Base: time.Minute}))
	b.Update(instancesOf(good, bad))
	sum := sumClient(t, b, time.Second, retry(3))
	var failedCalls int
	for i := range 400 {
		if _, err := sum(context.Background(), addsvc.SumRequest{A: int64(i), B: 1}); err != nil {
			failedCalls++
		}
	}
	if failedCalls > 4 {
		t.Errorf("%d of 400 calls failed", failedCalls)
	}
	s := statOf(b, "flaky")
	if s.Ejections == 0 || !s.Ejected {
		t.Fatalf("flaky instance: %+v, want ejected", s)
	}
	// Once ejected (for a minute), the flaky instance gets no more calls.
	before := bad.calls.Load()
	for i := range 50 {
		if _, err := sum(context.Background(), addsvc.SumRequest{A: int64(i), B: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n := bad.calls.Load() - before; n != 0 {
		t.Errorf("ejected instance got %d calls", n)
	}
}

// TestEjectionAndReadmission follows one instance through failure, ejection, readmission on
// probation, ejection again for twice as long, recovery and readmission for good.
func TestEjectionAndReadmission(t *testing.T) {
	good := startInstance(t, "good", healthy)
	sick := startInstance(t, "sick", failing)
	var mu sync.Mutex
	var lengths []time.Duration
	b := balancer.New("addsvc",
		balancer.WithPolicy(balancer.RoundRobin),
		balancer.WithEjection(balancer.Ejection{Consecutive: 3, Window: -1, Base: 200 * time.Millisecond, Max: time.Minute}),
		balancer.WithOnEject(func(_ discovery.Instance, d time.Duration) {
			mu.Lock()
			lengths = append(lengths, d)
			mu.Unlock()
		}))
	b.Update(instancesOf(good, sick))
	sum := sumClient(t, b, time.Second) // no retries: count the raw failures
	call := func() error {
		_, err := sum(context.Background(), addsvc.SumRequest{A: 1, B: 1})
		return err
	}
	var failures int
	for range 20 {
		if call() != nil {
			failures++
		}
	}
	if failures != 3 {
		t.Errorf("%d calls failed before the ejection, want 3 (the threshold)", failures)
	}
	if !statOf(b, "sick").Ejected {
		t.Fatal("sick instance not ejected")
	}
	// Readmitted after 200ms on probation; one more failure ejects it for 400ms.
	waitFor(t, func() bool { return !statOf(b, "sick").Ejected })
	for range 4 {
		_ = call()
	}
	if s := statOf(b, "sick"); !s.Ejected || s.Ejections != 2 {
		t.Fatalf("after readmission and a failure: %+v, want ejected a second time", s)
	}
	// The instance recovers; once readmitted it serves again.
	sick.set(healthy)
	waitFor(t, func() bool { return !statOf(b, "sick").Ejected })
	before := sick.calls.Load()
	for range 10 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if sick.calls.Load()-before < 4 {
		t.Errorf("readmitted instance got %d of 10 calls", sick.calls.Load()-before)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lengths) != 2 || lengths[0] != 200*time.Millisecond || lengths[1] != 400*time.Millisecond {
		t.Errorf("ejection lengths %v, want [200ms 400ms]", lengths)
	}
}

// waitFor polls cond until it holds or 10 seconds pass.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInstancesLeaving removes instances from discovery while calls run: connections of
// departed addresses are closed after the grace period and calls keep succeeding.
func TestInstancesLeaving(t *testing.T) {
	ins := []*instance{startInstance(t, "a", healthy), startInstance(t, "b", healthy), startInstance(t, "c", healthy)}
	reg := discovery.NewStatic(instancesOf(ins...)...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := balancer.Watch(ctx, reg, "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	pool := balancer.NewConnPool(b, balancer.WithGrace(50*time.Millisecond))
	defer pool.Close()
	sum := balancer.Endpoint(endpoint.Info{Service: "addsvc", Method: "Sum"}, b,
		func(inst discovery.Instance) (endpoint.Endpoint[addsvc.SumRequest, addsvc.SumResponse], error) {
			cc, err := pool.Get(inst.Addr)
			if err != nil {
				return nil, err
			}
			return addsvc.NewGRPCClient(cc).Sum, nil
		})
	for i := range 30 {
		if _, err := sum(ctx, addsvc.SumRequest{A: 1, B: 1}); err != nil {
			t.Fatal(i, err)
		}
	}
	if pool.Len() != 3 {
		t.Fatalf("pool has %d connections, want 3", pool.Len())
	}
	reg.Set("addsvc", instancesOf(ins[2])...)
	waitFor(t, func() bool { return len(b.Instances()) == 1 })
	waitFor(t, func() bool { return pool.Len() == 1 })
	before := ins[2].calls.Load()
	for range 10 {
		if _, err := sum(ctx, addsvc.SumRequest{A: 1, B: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n := ins[2].calls.Load() - before; n != 10 {
		t.Errorf("the remaining instance got %d of 10 calls", n)
	}
	reg.Set("addsvc")
	waitFor(t, func() bool { return len(b.Instances()) == 0 })
	_, err = sum(ctx, addsvc.SumRequest{A: 1, B: 1})
	if svcerr.KindOf(err) != svcerr.Unavailable {
		t.Errorf("call with no instances: %v, want unavailable", err)
	}
}
