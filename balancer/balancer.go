// Package balancer spreads a client's calls over the instances of a service: round robin or
// power of two choices on in-flight calls and latency, ejection of failing instances with
// readmission after an exponentially growing time, and routing rules for canaries (a
// percentage of calls, or the calls that carry a header, to one version).
//
// A [Balancer] is fed the instance sets of a discovery.Watcher ([Watch], [Balancer.Follow])
// or given them ([Balancer.Update]). [Balancer.Pick] chooses an instance for one call and
// returns a function that reports the call's outcome. Clients use it through endpoint
// middleware: [Balancer.Middleware] picks an instance per call and puts it in the call's
// context ([InstanceFrom]); [Dispatch] calls a per-instance endpoint, made once per address
// by a factory; [Endpoint] joins the two. [ConnPool] keeps one gRPC connection per address
// and closes it when the address leaves the set.
//
// Retries belong outside the pick, so that each attempt picks again and avoids the
// instance that just failed:
//
//	endpoint.Wrap(info, balancer.Dispatch(b, perInstance), tracing, retry, b.Middleware(), breaker)
package balancer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// Policy is how a Balancer chooses among the instances a call may go to.
type Policy int

const (
	// P2C, power of two choices, draws two instances at random and takes the one with
	// fewer calls in flight per unit of weight; on a tie, the one with the lower moving
	// average of latency. It adapts to slow and stuck instances. It is the default.
	P2C Policy = iota
	// RoundRobin takes the instances in turn, each as often as its weight says (smooth
	// weighted round robin).
	RoundRobin
)

// String returns "p2c" or "round_robin".
func (p Policy) String() string {
	switch p {
	case P2C:
		return "p2c"
	case RoundRobin:
		return "round_robin"
	}
	return "unknown"
}

// Ejection configures outlier ejection: an instance that fails too often is taken out of
// the rotation for a while, then readmitted on probation, when one more failure ejects it
// again for twice as long. If every instance a call may go to is ejected, the balancer
// picks among them anyway (it fails open).
type Ejection struct {
	// Consecutive is the number of failures in a row that eject an instance; default 5.
	// A negative value turns this check off.
	Consecutive int
	// Window and Ratio eject an instance when, of Window calls in a row (default 20),
	// at least Ratio (default 0.5) failed. A negative Window turns this check off.
	Window int
	Ratio  float64
	// Base is how long the first ejection lasts (default 1s); each further ejection while
	// on probation doubles it, up to Max (default 30s).
	Base, Max time.Duration
}

func (e Ejection) withDefaults() Ejection {
	if e.Consecutive == 0 {
		e.Consecutive = 5
	}
	if e.Window == 0 {
		e.Window = 20
	}
	if e.Ratio <= 0 || e.Ratio > 1 {
		e.Ratio = 0.5
	}
	if e.Base <= 0 {
		e.Base = time.Second
	}
	if e.Max <= 0 {
		e.Max = 30 * time.Second
	}
	if e.Max < e.Base {
		e.Max = e.Base
	}
	return e
}

// Option configures a Balancer.
type Option func(*config)

type config struct {
	policy  Policy
	eject   Ejection
	failure func(error) bool
	header  func(ctx context.Context, key string) (string, bool)
	rules   []Rule
	zone    string
	onEject func(inst discovery.Instance, d time.Duration)
	alpha   float64
}

// WithPolicy sets the policy; the default is P2C.
func WithPolicy(p Policy) Option { return func(c *config) { c.policy = p } }

// WithEjection sets the outlier ejection thresholds; zero fields keep their defaults.
func WithEjection(e Ejection) Option { return func(c *config) { c.eject = e } }

// WithFailure sets what counts as an instance failure for ejection. The default,
// [IsInstanceFailure], counts the errors an instance is to blame for: unavailable, deadline
// exceeded, internal, unknown and data loss. Errors that it does not count (such as
// invalid argument or not found) are successes for ejection; a canceled call counts as
// neither.
func WithFailure(f func(error) bool) Option { return func(c *config) { c.failure = f } }

// WithZone makes the balancer prefer the instances whose discovery.MetaZone is zone (the
// caller's own zone): among the instances a call may go to, those in zone take all calls
// while any of them is not ejected; the others serve only when none is left.
func WithZone(zone string) Option { return func(c *config) { c.zone = zone } }

// WithRules sets the routing rules, checked in order; see [Rule].
func WithRules(rules ...Rule) Option { return func(c *config) { c.rules = append(c.rules, rules...) } }

// WithHeaderFunc sets how header rules read a call's headers. The default reads the values
// set by [WithRoute], then gRPC outgoing metadata, then gRPC incoming metadata (so that a
// header that reached a service is honoured on the calls it makes).
func WithHeaderFunc(f func(ctx context.Context, key string) (string, bool)) Option {
	return func(c *config) { c.header = f }
}

// WithOnEject sets a function called when an instance is ejected, with the ejection's
// length, for logging and metrics.
func WithOnEject(f func(inst discovery.Instance, d time.Duration)) Option {
	return func(c *config) { c.onEject = f }
}

// IsInstanceFailure reports whether err is one an instance is to blame for: its kind is
// Unavailable (which is also what a refused or broken connection is), DeadlineExceeded,
// Internal, Unknown or DataLoss.
func IsInstanceFailure(err error) bool {
	if err == nil {
		return false
	}
	switch svcerr.KindOf(err) {
	case svcerr.Unavailable, svcerr.DeadlineExceeded, svcerr.Internal, svcerr.Unknown, svcerr.DataLoss:
		return true
	}
	return false
}

// Balancer chooses an instance of one service for each call. It is safe for concurrent use.
type Balancer struct {
	service string
	cfg     config
	state   atomic.Pointer[state]
	seq     atomic.Uint64 // round robin position

	mu      sync.Mutex // serializes Update and guards onRemove
	onRmv   []func(addr string)
	ready   chan struct{}
	readyMu sync.Once
}

// New returns a Balancer for service with no instances; give it instances with Update or
// Follow.
func New(service string, opts ...Option) *Balancer {
	b := &Balancer{service: service, ready: make(chan struct{})}
	b.cfg.alpha = 0.3
	for _, o := range opts {
		o(&b.cfg)
	}
	b.cfg.eject = b.cfg.eject.withDefaults()
	if b.cfg.failure == nil {
		b.cfg.failure = IsInstanceFailure
	}
	if b.cfg.header == nil {
		b.cfg.header = defaultHeader
	}
	b.state.Store(b.build(nil, nil))
	return b
}

// Watch returns a Balancer for service that follows w until ctx ends. It waits for the
// first instance set, so that the first calls do not fail for want of instances.
func Watch(ctx context.Context, w discovery.Watcher, service string, opts ...Option) (*Balancer, error) {
	ch, err := w.Watch(ctx, service)
	if err != nil {
		return nil, err
	}
	b := New(service, opts...)
	go b.Follow(ch)
	select {
	case <-b.ready:
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Follow updates the balancer with every set received from ch until ch is closed.
func (b *Balancer) Follow(ch <-chan []discovery.Instance) {
	for set := range ch {
		b.Update(set)
	}
}

// Service returns the service name.
func (b *Balancer) Service() string { return b.service }

// OnRemove registers f to be called with each address that leaves the instance set, after
// the update; caches of per-address connections and clients use it.
func (b *Balancer) OnRemove(f func(addr string)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onRmv = append(b.onRmv, f)
}

// Update replaces the instance set. Instances that stay (same key, address and metadata)
// keep their statistics and ejection state.
func (b *Balancer) Update(instances []discovery.Instance) {
	b.mu.Lock()
	old := b.state.Load()
	st := b.build(instances, old)
	b.state.Store(st)
	var removed []string
	for _, h := range old.all.hosts {
		if _, ok := st.addrs[h.inst.Addr]; !ok {
			removed = append(removed, h.inst.Addr)
		}
	}
	hooks := slices.Clone(b.onRmv)
	b.mu.Unlock()
	b.readyMu.Do(func() { close(b.ready) })
	for _, addr := range removed {
		for _, f := range hooks {
			f(addr)
		}
	}
}

// Instances returns the current instance set.
func (b *Balancer) Instances() []discovery.Instance {
	st := b.state.Load()
	out := make([]discovery.Instance, len(st.all.hosts))
	for i, h := range st.all.hosts {
		out[i] = h.inst
	}
	return out
}

// Stat describes one instance as the balancer sees it.
type Stat struct {
	Instance discovery.Instance
	// InFlight is the number of calls in progress.
	InFlight int64
	// Latency is the moving average of call latency.
	Latency time.Duration
	// Ejected is true while the instance is out of the rotation.
	Ejected bool
	// Ejections counts how often the instance was ejected.
	Ejections int64
	// Calls and Failures count the finished calls and the instance failures among them.
	Calls, Failures int64
}

// Stats returns the state of every instance, in ID order.
func (b *Balancer) Stats() []Stat {
	st := b.state.Load()
	now := time.Now().UnixNano()
	out := make([]Stat, len(st.all.hosts))
	for i, h := range st.all.hosts {
		out[i] = Stat{
			Instance:  h.inst,
			InFlight:  h.inflight.Load(),
			Latency:   time.Duration(math.Float64frombits(h.ewma.Load())),
			Ejected:   h.ejected(now),
			Ejections: h.ejections.Load(),
			Calls:     h.calls.Load(),
			Failures:  h.failures.Load(),
		}
	}
	return out
}

// ErrNoInstances is the cause of the Unavailable error that Pick returns when the service
// has no instances.
var ErrNoInstances = errors.New("balancer: no instances")

// Pick chooses the instance for one call and returns it with a function that the caller
// must call once with the call's error (nil on success) when the call ends. Pick fails with
// an Unavailable error when the service has no instances.
func (b *Balancer) Pick(ctx context.Context) (discovery.Instance, func(error), error) {
	p, err := b.start(ctx)
	if err != nil {
		return discovery.Instance{}, nil, err
	}
	return p.h.inst, p.end, nil
}

// picked is one call's pick, as [Balancer.Pick] makes it: the host, when the call started
// and the attempts of the call it belongs to (nil outside [Attempts]).
type picked struct {
	b   *Balancer
	h   *host
	now int64
	a   *attempts
}

// start picks the host for one call and counts the call in flight; the caller must call
// end with the call's error. Middleware keeps the result on its stack, where Pick's
// closure would be an allocation per call.
func (b *Balancer) start(ctx context.Context) (picked, error) {
	now := time.Now().UnixNano()
	h := b.pick(ctx, now)
	if h == nil {
		return picked{}, svcerr.Wrap(svcerr.Unavailable, "service unavailable", fmt.Errorf("%w of %s", ErrNoInstances, b.service))
	}
	a, _ := ctx.Value(attemptsKey{}).(*attempts)
	if a != nil && a.failed(h) {
		if alt := b.avoid(ctx, a, now); alt != nil {
			h = alt
		}
	}
	h.inflight.Add(1)
	return picked{b: b, h: h, now: now, a: a}, nil
}

// end reports the outcome of the call p was picked for.
func (p picked) end(err error) {
	p.b.done(p.h, p.now, err)
	if p.a != nil && err != nil && p.b.cfg.failure(err) {
		p.a.add(p.h)
	}
}

// avoid returns the best host the call may go to that has not failed this call before and
// is not ejected, or nil.
func (b *Balancer) avoid(ctx context.Context, a *attempts, now int64) *host {
	st := b.state.Load()
	for _, c := range []*subset{b.route(ctx, st), st.all} {
		if c == nil {
			continue
		}
		var best *host
		for _, h := range c.hosts {
			if !h.ejected(now) && !a.failed(h) && (best == nil || better(h, best)) {
				best = h
			}
		}
		if best != nil {
			return best
		}
	}
	return nil
}

type attemptsKey struct{}

// attemptsCtx carries the attempts of a call in the same allocation as the context.
type attemptsCtx struct {
	context.Context
	a attempts
}

func (c *attemptsCtx) Value(key any) any {
	if key == (attemptsKey{}) {
		return &c.a
	}
	return c.Context.Value(key)
}

// attempts remembers the hosts that failed earlier attempts of one call.
type attempts struct {
	mu     sync.Mutex
	hosts  [4]*host
	n      int
	others []*host
}

func (a *attempts) add(h *host) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n < len(a.hosts) {
		a.hosts[a.n] = h
		a.n++
		return
	}
	a.others = append(a.others, h)
}

func (a *attempts) failed(h *host) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.hosts[:a.n] {
		if x == h {
			return true
		}
	}
	return slices.Contains(a.others, h)
}

// NewCall returns a context that marks the start of one call for the balancer, as
// [Attempts] does for an endpoint: picks made with it avoid the instances that failed the
// call's earlier attempts, while there are others.
func NewCall(ctx context.Context) context.Context { return &attemptsCtx{Context: ctx} }

// Attempts returns middleware that marks the start of one call for the balancer, so that
// the retries of the call (made by retry middleware inside it) go to other instances than
// the ones that already failed it, while there are any. Put it outside the retry
// middleware; [Endpoint] does.
func Attempts() endpoint.Middleware {
	return func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			return next(&attemptsCtx{Context: ctx}, req)
		}
	}
}

// pick returns the host for a call, or nil when there is none.
func (b *Balancer) pick(ctx context.Context, now int64) *host {
	st := b.state.Load()
	if len(st.all.hosts) == 0 {
		return nil
	}
	if c := b.route(ctx, st); c != nil {
		if h := b.choose(c, now); h != nil {
			return h
		}
	}
	if h := b.choose(st.all, now); h != nil {
		return h
	}
	// Every instance is ejected: fail open.
	return b.chooseAny(st.all)
}

// choose picks a host of c that is not ejected, preferring the hosts of the balancer's
// zone, or returns nil if all are ejected.
func (b *Balancer) choose(c *subset, now int64) *host {
	if c.local != nil {
		if h := b.chooseIn(c.local, now); h != nil {
			return h
		}
	}
	return b.chooseIn(c, now)
}

// chooseIn picks a host of c that is not ejected, or returns nil if all are.
func (b *Balancer) chooseIn(c *subset, now int64) *host {
	hs := c.hosts
	switch n := len(hs); {
	case n == 0:
		return nil
	case n == 1:
		if hs[0].ejected(now) {
			return nil
		}
		return hs[0]
	}
	if b.cfg.policy == RoundRobin {
		s := c.schedule
		if h := hs[s[b.seq.Add(1)%uint64(len(s))]]; !h.ejected(now) {
			return h
		}
		// The turn fell on an ejected instance: give it to a random other one, so that the
		// ejected instance's share spreads evenly rather than all going to its successor.
		n := 0
		for _, h := range hs {
			if !h.ejected(now) {
				n++
			}
		}
		if n == 0 {
			return nil
		}
		k := rand.IntN(n)
		for _, h := range hs {
			if !h.ejected(now) {
				if k == 0 {
					return h
				}
				k--
			}
		}
		return nil
	}
	n := len(hs)
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	x, y := hs[i], hs[j]
	xe, ye := x.ejected(now), y.ejected(now)
	switch {
	case xe && ye:
		// Both drawn instances are out: take the best of the others, if any.
		var best *host
		for _, h := range hs {
			if !h.ejected(now) && (best == nil || better(h, best)) {
				best = h
			}
		}
		return best
	case xe:
		return y
	case ye:
		return x
	case better(y, x):
		return y
	}
	return x
}

func (b *Balancer) chooseAny(c *subset) *host {
	if b.cfg.policy == RoundRobin {
		return c.hosts[c.schedule[b.seq.Add(1)%uint64(len(c.schedule))]]
	}
	var best *host
	for _, h := range c.hosts {
		if best == nil || better(h, best) {
			best = h
		}
	}
	return best
}

// better reports whether a should be preferred to b by P2C: fewer calls in flight per unit
// of weight, then lower latency.
func better(a, b *host) bool {
	la := float64(a.inflight.Load()) / a.weight
	lb := float64(b.inflight.Load()) / b.weight
	if la != lb {
		return la < lb
	}
	return math.Float64frombits(a.ewma.Load()) < math.Float64frombits(b.ewma.Load())
}

// done records the end of a call to h.
func (b *Balancer) done(h *host, start int64, err error) {
	h.inflight.Add(-1)
	end := time.Now().UnixNano()
	lat := float64(end - start)
	if old := math.Float64frombits(h.ewma.Load()); old == 0 {
		h.ewma.Store(math.Float64bits(lat))
	} else {
		h.ewma.Store(math.Float64bits(old + b.cfg.alpha*(lat-old)))
	}
	if err != nil && svcerr.KindOf(err) == svcerr.Canceled {
		return
	}
	h.calls.Add(1)
	failed := b.cfg.failure(err)
	if failed {
		h.failures.Add(1)
	}
	if d, eject := h.record(failed, b.cfg.eject, end); eject && b.cfg.onEject != nil {
		b.cfg.onEject(h.inst, d)
	}
}

// host is one instance and its statistics.
type host struct {
	inst   discovery.Instance
	weight float64
	addr   any // inst.Addr as an interface value, converted once: what instanceCtx answers resilience.InstanceKey with

	inflight  atomic.Int64
	ewma      atomic.Uint64 // float64 bits, nanoseconds
	until     atomic.Int64  // unix nanoseconds the ejection ends at; 0 when not ejected
	ejections atomic.Int64
	calls     atomic.Int64
	failures  atomic.Int64

	mu        sync.Mutex
	consec    int  // failures in a row
	winCalls  int  // calls in the current window
	winFails  int  // failures in the current window
	probation bool // readmitted after an ejection; one failure ejects again
	level     int  // ejections in a row; the next lasts Base << level
}

func newHost(inst discovery.Instance) *host {
	return &host{inst: inst, weight: inst.Weight(), addr: inst.Addr}
}

func (h *host) ejected(now int64) bool {
	u := h.until.Load()
	return u != 0 && now < u
}

// record counts one call and reports whether it ejected the host, and for how long.
func (h *host) record(failed bool, e Ejection, now int64) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ejected(now) {
		return 0, false // a call that was in flight when the host was ejected
	}
	if !failed {
		h.consec = 0
		if h.probation {
			h.probation, h.level = false, 0
		}
	} else {
		h.consec++
	}
	eject := failed && h.probation
	if e.Consecutive > 0 && h.consec >= e.Consecutive {
		eject = true
	}
	if e.Window > 0 {
		h.winCalls++
		if failed {
			h.winFails++
		}
		if h.winCalls >= e.Window {
			if float64(h.winFails) >= e.Ratio*float64(h.winCalls) {
				eject = true
			}
			h.winCalls, h.winFails = 0, 0
		}
	}
	if !eject {
		return 0, false
	}
	d := e.Base << min(h.level, 30)
	if d > e.Max || d <= 0 {
		d = e.Max
	}
	h.level++
	h.consec, h.winCalls, h.winFails = 0, 0, 0
	h.probation = true
	h.until.Store(now + int64(d))
	h.ejections.Add(1)
	return d, true
}
