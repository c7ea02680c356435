package balancer

import (
	"context"
	"math"
	"math/rand/v2"

	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/discovery"
)

// Rule sends some calls to the instances of one version (their discovery.MetaVersion
// metadata). A header rule (Header set) matches the calls whose header Header has the value
// Value; a weighted rule (Header empty) matches Percent percent of the calls, at random.
// Header rules are checked first, in order; then one random draw decides between the
// weighted rules. Calls that no rule matches go to the instances whose version no rule
// names. Whenever the chosen group has no instance that is not ejected, the call goes to
// any instance.
//
// Canary examples: WeightRule("v2", 5) sends 5% of the calls to v2, and
// HeaderRule("x-canary", "1", "v2") sends the calls with "x-canary: 1" there.
type Rule struct {
	// Version is the version of the instances the matched calls go to.
	Version string
	// Header and Value, when Header is set, match calls by header. Header names are
	// matched as given; use lower case for gRPC metadata.
	Header, Value string
	// Percent, for a rule without Header, is the share of calls matched, 0 to 100.
	Percent float64
}

// HeaderRule returns a rule that sends the calls whose header key has value to version.
func HeaderRule(key, value, version string) Rule {
	return Rule{Version: version, Header: key, Value: value}
}

// WeightRule returns a rule that sends percent percent of the calls to version.
func WeightRule(version string, percent float64) Rule {
	return Rule{Version: version, Percent: percent}
}

type routeKey struct{}

type route struct {
	key, value string
	next       *route
}

// WithRoute returns a context in which header rules see the header key with value, for
// transports without headers or to route a call without setting one.
func WithRoute(ctx context.Context, key, value string) context.Context {
	next, _ := ctx.Value(routeKey{}).(*route)
	return context.WithValue(ctx, routeKey{}, &route{key: key, value: value, next: next})
}

// defaultHeader reads a header from WithRoute values, then from gRPC outgoing and incoming
// metadata.
func defaultHeader(ctx context.Context, key string) (string, bool) {
	for r, _ := ctx.Value(routeKey{}).(*route); r != nil; r = r.next {
		if r.key == key {
			return r.value, true
		}
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		if v := md.Get(key); len(v) > 0 {
			return v[0], true
		}
	}
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// state is an immutable view of the instance set, replaced as a whole by Update.
type state struct {
	all       *subset
	addrs     map[string]struct{}
	byVersion map[string]*subset
	rest      *subset // instances whose version no rule names
	weighted  []Rule  // the rules without Header
	headers   []Rule  // the rules with Header
}

// subset is a group of hosts and their round robin schedule: indexes into hosts, each as
// often as its weight says, interleaved.
type subset struct {
	hosts    []*host
	schedule []int
	local    *subset // the hosts in the balancer's zone, when WithZone is set and there are any
}

// withZone sets s.local to the hosts of s in zone.
func (s *subset) withZone(zone string) *subset {
	if zone == "" {
		return s
	}
	var local []*host
	for _, h := range s.hosts {
		if h.inst.Zone() == zone {
			local = append(local, h)
		}
	}
	if len(local) > 0 && len(local) < len(s.hosts) {
		s.local = newSubset(local)
	}
	return s
}

func newSubset(hosts []*host) *subset {
	s := &subset{hosts: hosts}
	if len(hosts) == 0 {
		return s
	}
	minW, sum, equal := math.Inf(1), 0.0, true
	for _, h := range hosts {
		minW = min(minW, h.weight)
		sum += h.weight
		equal = equal && h.weight == hosts[0].weight
	}
	if equal {
		s.schedule = make([]int, len(hosts))
		for i := range hosts {
			s.schedule[i] = i
		}
		return s
	}
	// Smooth weighted round robin (as nginx does) over a schedule of up to 1000 slots.
	slots := int(math.Round(sum / minW))
	slots = max(len(hosts), min(slots, 1000))
	cur := make([]float64, len(hosts))
	s.schedule = make([]int, slots)
	for k := range slots {
		best := 0
		for i, h := range hosts {
			cur[i] += h.weight
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= sum
		s.schedule[k] = best
	}
	return s
}

// build makes the state for instances, reusing the hosts of old that did not change.
func (b *Balancer) build(instances []discovery.Instance, old *state) *state {
	prev := map[string]*host{}
	if old != nil {
		for _, h := range old.all.hosts {
			prev[h.inst.Key()] = h
		}
	}
	instances = dedupe(instances)
	hosts := make([]*host, 0, len(instances))
	st := &state{addrs: make(map[string]struct{}, len(instances)), byVersion: map[string]*subset{}}
	for _, in := range instances {
		h, ok := prev[in.Key()]
		if !ok || !h.inst.Equal(in) {
			h = newHost(in)
		}
		hosts = append(hosts, h)
		st.addrs[in.Addr] = struct{}{}
	}
	zone := b.cfg.zone
	st.all = newSubset(hosts).withZone(zone)
	named := map[string]bool{}
	for _, r := range b.cfg.rules {
		named[r.Version] = true
		if r.Header != "" {
			st.headers = append(st.headers, r)
		} else if r.Percent > 0 {
			st.weighted = append(st.weighted, r)
		}
	}
	groups := map[string][]*host{}
	var rest []*host
	for _, h := range hosts {
		v := h.inst.Version()
		if named[v] {
			groups[v] = append(groups[v], h)
		} else {
			rest = append(rest, h)
		}
	}
	for v, hs := range groups {
		st.byVersion[v] = newSubset(hs).withZone(zone)
	}
	st.rest = newSubset(rest).withZone(zone)
	return st
}

// dedupe drops instances with the key of an earlier one and copies the rest into ID order.
func dedupe(in []discovery.Instance) []discovery.Instance {
	seen := make(map[string]bool, len(in))
	out := make([]discovery.Instance, 0, len(in))
	for _, i := range in {
		if !seen[i.Key()] {
			seen[i.Key()] = true
			out = append(out, i)
		}
	}
	discovery.Sort(out)
	return out
}

// route returns the group a call goes to by the rules, or nil for all instances.
func (b *Balancer) route(ctx context.Context, st *state) *subset {
	if len(b.cfg.rules) == 0 {
		return nil
	}
	for _, r := range st.headers {
		if v, ok := b.cfg.header(ctx, r.Header); ok && v == r.Value {
			return st.byVersion[r.Version]
		}
	}
	if len(st.weighted) > 0 {
		x := rand.Float64() * 100
		for _, r := range st.weighted {
			if x < r.Percent {
				return st.byVersion[r.Version]
			}
			x -= r.Percent
		}
	}
	if len(st.rest.hosts) == 0 {
		return nil
	}
	return st.rest
}
