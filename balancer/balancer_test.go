package balancer_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
)

func in(id, version string, weight string) discovery.Instance {
	m := map[string]string{}
	if version != "" {
		m[discovery.MetaVersion] = version
	}
	if weight != "" {
		m[discovery.MetaWeight] = weight
	}
	return discovery.Instance{Service: "svc", ID: id, Addr: id + ":1", Metadata: m}
}

// picks counts the instances n calls go to; each call ends at once with err.
func picks(t *testing.T, b *balancer.Balancer, ctx context.Context, n int, err error) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		inst, done, perr := b.Pick(ctx)
		if perr != nil {
			t.Fatal(perr)
		}
		got[inst.ID]++
		done(err)
	}
	return got
}

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name      string
		instances []discovery.Instance
		n         int
		want      map[string]int
	}{
		{"equal", []discovery.Instance{in("a", "", ""), in("b", "", ""), in("c", "", "")}, 300, map[string]int{"a": 100, "b": 100, "c": 100}},
		{"weighted", []discovery.Instance{in("a", "", "1"), in("b", "", "3")}, 400, map[string]int{"a": 100, "b": 300}},
		{"fractional weights", []discovery.Instance{in("a", "", "0.5"), in("b", "", "1")}, 300, map[string]int{"a": 100, "b": 200}},
		{"bad weight is 1", []discovery.Instance{in("a", "", "-2"), in("b", "", "x")}, 100, map[string]int{"a": 50, "b": 50}},
		{"one", []discovery.Instance{in("a", "", "")}, 10, map[string]int{"a": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := balancer.New("svc", balancer.WithPolicy(balancer.RoundRobin))
			b.Update(tt.instances)
			got := picks(t, b, context.Background(), tt.n, nil)
			for id, want := range tt.want {
				if got[id] != want {
					t.Errorf("%s got %d calls, want %d (all: %v)", id, got[id], want, got)
				}
			}
		})
	}
}

// TestP2CAvoidsBusyInstance holds a call open on one instance: P2C then sends new calls to
// the others, which have none in flight.
func TestP2CAvoidsBusyInstance(t *testing.T) {
	b := balancer.New("svc")
	b.Update([]discovery.Instance{in("a", "", ""), in("b", "", ""), in("c", "", "")})
	var held []func(error)
	for len(held) < 1 {
		inst, done, err := b.Pick(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if inst.ID == "a" {
			held = append(held, done)
		} else {
			done(nil)
		}
	}
	got := picks(t, b, context.Background(), 200, nil)
	if got["a"] != 0 {
		t.Errorf("the instance with a call in flight got %d of 200 new calls", got["a"])
	}
	for _, done := range held {
		done(nil)
	}
	if s := b.Stats(); s[0].InFlight != 0 {
		t.Errorf("in flight after the calls ended: %d", s[0].InFlight)
	}
}

// TestP2CPrefersFastInstance: with no calls in flight, the instance with the lower moving
// average of latency wins each draw it is in.
func TestP2CPrefersFastInstance(t *testing.T) {
	b := balancer.New("svc")
	b.Update([]discovery.Instance{in("fast", "", ""), in("slow", "", "")})
	// Teach the balancer the latencies: one slow call on "slow", one quick call on "fast".
	for _, id := range []string{"slow", "fast"} {
		for {
			inst, done, _ := b.Pick(context.Background())
			if inst.ID != id {
				done(nil)
				continue
			}
			if id == "slow" {
				time.Sleep(20 * time.Millisecond)
			}
			done(nil)
			break
		}
	}
	got := picks(t, b, context.Background(), 100, nil)
	if got["fast"] < 90 {
		t.Errorf("fast instance got %d of 100 calls", got["fast"])
	}
}

func TestRouting(t *testing.T) {
	instances := []discovery.Instance{in("a1", "v1", ""), in("a2", "v1", ""), in("b1", "v2", ""), in("c1", "v3", "")}
	versionOf := map[string]string{"a1": "v1", "a2": "v1", "b1": "v2", "c1": "v3"}
	canary := metadata.NewOutgoingContext(context.Background(), metadata.Pairs("x-canary", "1"))
	incoming := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-canary", "1"))
	tests := []struct {
		name  string
		rules []balancer.Rule
		ctx   context.Context
		want  map[string]float64 // share of calls per version
	}{
		{"no rules", nil, context.Background(), map[string]float64{"v1": 0.5, "v2": 0.25, "v3": 0.25}},
		{"5% to v2", []balancer.Rule{balancer.WeightRule("v2", 5)}, context.Background(), map[string]float64{"v1": 0.95 * 2 / 3, "v2": 0.05, "v3": 0.95 / 3}},
		{"two weights", []balancer.Rule{balancer.WeightRule("v2", 10), balancer.WeightRule("v3", 30)}, context.Background(), map[string]float64{"v1": 0.6, "v2": 0.1, "v3": 0.3}},
		{"header rule, no header", []balancer.Rule{balancer.HeaderRule("x-canary", "1", "v2")}, context.Background(), map[string]float64{"v1": 2. / 3, "v3": 1. / 3}},
		{"header rule, WithRoute", []balancer.Rule{balancer.HeaderRule("x-canary", "1", "v2")}, balancer.WithRoute(context.Background(), "x-canary", "1"), map[string]float64{"v2": 1}},
		{"header rule, other value", []balancer.Rule{balancer.HeaderRule("x-canary", "1", "v2")}, balancer.WithRoute(context.Background(), "x-canary", "0"), map[string]float64{"v1": 2. / 3, "v3": 1. / 3}},
		{"header rule, outgoing metadata", []balancer.Rule{balancer.HeaderRule("x-canary", "1", "v2")}, canary, map[string]float64{"v2": 1}},
		{"header rule, incoming metadata", []balancer.Rule{balancer.HeaderRule("x-canary", "1", "v2")}, incoming, map[string]float64{"v2": 1}},
		{"header before weight", []balancer.Rule{balancer.HeaderRule("x-canary", "1", "v3"), balancer.WeightRule("v2", 50)}, canary, map[string]float64{"v3": 1}},
		{"version without instances", []balancer.Rule{balancer.HeaderRule("x-canary", "1", "v9")}, canary, map[string]float64{"v1": 0.5, "v2": 0.25, "v3": 0.25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := balancer.New("svc", balancer.WithPolicy(balancer.RoundRobin), balancer.WithRules(tt.rules...))
			b.Update(instances)
			const n = 20000
			got := map[string]float64{}
			for id, c := range picks(t, b, tt.ctx, n, nil) {
				got[versionOf[id]] += float64(c) / n
			}
			for _, v := range []string{"v1", "v2", "v3"} {
				if math.Abs(got[v]-tt.want[v]) > 0.02 {
					t.Errorf("version %s got %.3f of the calls, want %.3f", v, got[v], tt.want[v])
				}
			}
		})
	}
}

func TestHeaderFunc(t *testing.T) {
	type key struct{}
	b := balancer.New("svc",
		balancer.WithRules(balancer.HeaderRule("tenant", "beta", "v2")),
		balancer.WithHeaderFunc(func(ctx context.Context, k string) (string, bool) {
			v, ok := ctx.Value(key{}).(string)
			return v, ok && k == "tenant"
		}))
	b.Update([]discovery.Instance{in("a", "v1", ""), in("b", "v2", "")})
	got := picks(t, b, context.WithValue(context.Background(), key{}, "beta"), 50, nil)
	if got["b"] != 50 {
		t.Errorf("picks %v, want all on b", got)
	}
}

func TestEjectionRules(t *testing.T) {
	unavailable := svcerr.New(svcerr.Unavailable, "down")
	tests := []struct {
		name    string
		eject   balancer.Ejection
		errs    []error // outcomes of the calls to instance "a"
		ejected bool
	}{
		{"consecutive failures", balancer.Ejection{Consecutive: 3, Window: -1}, []error{unavailable, unavailable, unavailable}, true},
		{"a success resets the count", balancer.Ejection{Consecutive: 3, Window: -1}, []error{unavailable, unavailable, nil, unavailable, unavailable}, false},
		{"caller errors do not count", balancer.Ejection{Consecutive: 2, Window: -1}, []error{svcerr.New(svcerr.InvalidArgument, "x"), svcerr.New(svcerr.NotFound, "x"), svcerr.New(svcerr.PermissionDenied, "x")}, false},
		{"cancellations do not count", balancer.Ejection{Consecutive: 2, Window: -1}, []error{unavailable, context.Canceled, unavailable}, true},
		{"deadline exceeded counts", balancer.Ejection{Consecutive: 2, Window: -1}, []error{context.DeadlineExceeded, svcerr.New(svcerr.DeadlineExceeded, "slow")}, true},
		{"failure ratio", balancer.Ejection{Consecutive: -1, Window: 4, Ratio: 0.5}, []error{unavailable, nil, unavailable, nil}, true},
		{"below the ratio", balancer.Ejection{Consecutive: -1, Window: 4, Ratio: 0.5}, []error{unavailable, nil, nil, nil}, false},
		{"internal errors count", balancer.Ejection{Consecutive: 2, Window: -1}, []error{errors.New("boom"), svcerr.New(svcerr.Internal, "bug")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := balancer.New("svc", balancer.WithPolicy(balancer.RoundRobin), balancer.WithEjection(tt.eject))
			b.Update([]discovery.Instance{in("a", "", ""), in("b", "", "")})
			for i := 0; i < len(tt.errs); {
				inst, done, _ := b.Pick(context.Background())
				if inst.ID == "a" {
					done(tt.errs[i])
					i++
				} else {
					done(nil)
				}
			}
			if s := statOf(b, "a"); s.Ejected != tt.ejected {
				t.Errorf("ejected = %v, want %v (%+v)", s.Ejected, tt.ejected, s)
			}
		})
	}
}

// TestFailOpen: when every instance is ejected, calls still go somewhere.
func TestFailOpen(t *testing.T) {
	for _, p := range []balancer.Policy{balancer.P2C, balancer.RoundRobin} {
		b := balancer.New("svc", balancer.WithPolicy(p), balancer.WithEjection(balancer.Ejection{Consecutive: 1, Base: time.Hour}))
		b.Update([]discovery.Instance{in("a", "", ""), in("b", "", "")})
		picks(t, b, context.Background(), 2, svcerr.New(svcerr.Unavailable, "down"))
		for _, s := range b.Stats() {
			if !s.Ejected {
				t.Fatalf("%s: %s not ejected", p, s.Instance.ID)
			}
		}
		if got := picks(t, b, context.Background(), 10, nil); got["a"]+got["b"] != 10 {
			t.Errorf("%s: picks %v", p, got)
		}
	}
}

func TestUpdate(t *testing.T) {
	b := balancer.New("svc", balancer.WithEjection(balancer.Ejection{Consecutive: 1, Base: time.Hour}))
	var mu sync.Mutex
	var removed []string
	b.OnRemove(func(addr string) {
		mu.Lock()
		removed = append(removed, addr)
		mu.Unlock()
	})
	if _, _, err := b.Pick(context.Background()); svcerr.KindOf(err) != svcerr.Unavailable || !errors.Is(err, balancer.ErrNoInstances) {
		t.Errorf("Pick with no instances: %v", err)
	}
	b.Update([]discovery.Instance{in("a", "", ""), in("b", "", ""), in("a", "", "")}) // a duplicate is dropped
	if n := len(b.Instances()); n != 2 {
		t.Fatalf("%d instances", n)
	}
	// Eject a; an unchanged a keeps its state across an update, a changed one starts anew.
	for statOf(b, "a").Ejections == 0 {
		inst, done, _ := b.Pick(context.Background())
		if inst.ID == "a" {
			done(svcerr.New(svcerr.Unavailable, "down"))
		} else {
			done(nil)
		}
	}
	b.Update([]discovery.Instance{in("a", "", ""), in("b", "", ""), in("c", "", "")})
	if !statOf(b, "a").Ejected {
		t.Error("update of an unchanged instance readmitted it")
	}
	b.Update([]discovery.Instance{in("a", "v2", ""), in("c", "", "")})
	if s := statOf(b, "a"); s.Ejected || s.Ejections != 0 {
		t.Errorf("changed instance kept its state: %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(removed, []string{"b:1"}) {
		t.Errorf("removed %v, want [b:1]", removed)
	}
}

// TestAttemptsAvoidFailedInstances: the retries of one call go to instances that have not
// failed it yet.
func TestAttemptsAvoidFailedInstances(t *testing.T) {
	b := balancer.New("svc", balancer.WithEjection(balancer.Ejection{Consecutive: -1, Window: -1}))
	b.Update([]discovery.Instance{in("a", "", ""), in("b", "", ""), in("c", "", "")})
	var seen []string
	h := endpoint.Chain(balancer.Attempts(), retry(3), b.Middleware())(endpoint.Info{Idempotent: true},
		func(ctx context.Context, _ any) (any, error) {
			inst := balancer.InstanceFrom(ctx)
			seen = append(seen, inst.ID)
			if resilience.InstanceFrom(ctx) != inst.Addr {
				t.Errorf("resilience.InstanceFrom = %q, want %q", resilience.InstanceFrom(ctx), inst.Addr)
			}
			return nil, svcerr.New(svcerr.Unavailable, "down")
		})
	for range 20 {
		seen = seen[:0]
		_, _ = h(context.Background(), nil)
		s := slices.Clone(seen)
		slices.Sort(s)
		if len(seen) != 3 || !slices.Equal(slices.Compact(s), []string{"a", "b", "c"}) {
			t.Fatalf("attempts went to %v, want each instance once", seen)
		}
	}
}

func TestWatch(t *testing.T) {
	reg := discovery.NewStatic(in("a", "", ""))
	ctx, cancel := context.WithCancel(context.Background())
	b, err := balancer.Watch(ctx, reg, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Instances(); len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("instances %v", got)
	}
	reg.Set("svc", in("b", "", ""), in("c", "", ""))
	waitFor(t, func() bool { return len(b.Instances()) == 2 })
	cancel()
	// A Watch that cannot get a first set gives up with its context.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if _, err := balancer.Watch(ctx2, neverWatcher{}, "svc"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Watch without a first set: %v", err)
	}
}

type neverWatcher struct{}

func (neverWatcher) Watch(context.Context, string) (<-chan []discovery.Instance, error) {
	return make(chan []discovery.Instance), nil
}

func TestZone(t *testing.T) {
	zoned := func(id, zone, version string) discovery.Instance {
		i := in(id, version, "")
		i.Metadata[discovery.MetaZone] = zone
		return i
	}
	b := balancer.New("svc", balancer.WithZone("eu-1"), balancer.WithPolicy(balancer.RoundRobin),
		balancer.WithEjection(balancer.Ejection{Consecutive: 1, Base: time.Hour}),
		balancer.WithRules(balancer.HeaderRule("x-canary", "1", "v2")))
	b.Update([]discovery.Instance{zoned("a", "eu-1", "v1"), zoned("b", "eu-1", "v1"), zoned("c", "us-1", "v1"), zoned("d", "us-1", "v2")})
	if got := picks(t, b, context.Background(), 100, nil); got["a"] != 50 || got["b"] != 50 {
		t.Errorf("picks %v, want the eu-1 instances only", got)
	}
	// A routed call whose version has no instance in the zone goes to another zone.
	if got := picks(t, b, balancer.WithRoute(context.Background(), "x-canary", "1"), 10, nil); got["d"] != 10 {
		t.Errorf("canary picks %v, want d", got)
	}
	// With the local instances ejected, the others serve.
	for statOf(b, "a").Ejections == 0 || statOf(b, "b").Ejections == 0 {
		picks(t, b, context.Background(), 1, svcerr.New(svcerr.Unavailable, "down"))
	}
	if got := picks(t, b, context.Background(), 10, nil); got["c"] != 10 {
		t.Errorf("picks %v with the zone ejected, want c", got)
	}
}
