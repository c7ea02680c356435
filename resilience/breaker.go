package resilience

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// State is the state of one circuit of a [Breaker].
type State uint8

const (
	// Closed lets calls through and counts their failures.
	Closed State = iota
	// Open rejects calls at once, until BreakerConfig.OpenFor has passed.
	Open
	// HalfOpen lets a few probe calls through; their success closes the circuit, a
	// failure opens it again.
	HalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// BreakerConfig configures a [Breaker]. The zero value gives the defaults named below.
type BreakerConfig struct {
	// ConsecutiveFailures opens a circuit after this many failures in a row. Default 5;
	// a negative value turns the trigger off.
	ConsecutiveFailures int
	// FailureRate opens a circuit when the share of failed calls over the last Window
	// reaches it, once the window holds at least MinRequests calls. Default 0.5; a
	// negative value turns the trigger off.
	FailureRate float64
	// MinRequests is the fewest calls in the window for FailureRate to apply. Default 20.
	MinRequests int
	// Window is the span over which FailureRate is measured, in 10 buckets. Default 10s.
	Window time.Duration
	// OpenFor is how long an open circuit rejects calls before it lets probes through.
	// Default 5s.
	OpenFor time.Duration
	// HalfOpenProbes is the number of probe calls a half-open circuit lets through at a
	// time, and the number of successful probes that close it. Default 1.
	HalfOpenProbes int
	// IsFailure reports whether a call's error counts against the instance. The default
	// counts the kinds that say the instance is unwell: unavailable, deadline_exceeded,
	// internal, unknown and data_loss. Errors of the caller's own making (invalid argument,
	// not found, permission denied, …) count as successes, and a call whose caller canceled
	// it is not counted at all; a call that outlived its deadline is a failure.
	IsFailure func(error) bool
	// OnStateChange, if set, is called when a circuit changes state, without locks held;
	// use it for metrics or logs.
	OnStateChange func(key string, from, to State)
}

func (c *BreakerConfig) setDefaults() {
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = 5
	}
	if c.FailureRate == 0 {
		c.FailureRate = 0.5
	}
	if c.MinRequests <= 0 {
		c.MinRequests = 20
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Second
	}
	c.Window = max(c.Window, numBuckets*time.Millisecond)
	if c.OpenFor <= 0 {
		c.OpenFor = 5 * time.Second
	}
	if c.HalfOpenProbes <= 0 {
		c.HalfOpenProbes = 1
	}
	if c.IsFailure == nil {
		c.IsFailure = defaultIsFailure
	}
}

func defaultIsFailure(err error) bool {
	switch svcerr.KindOf(err) {
	case svcerr.Unavailable, svcerr.DeadlineExceeded, svcerr.Internal, svcerr.Unknown, svcerr.DataLoss:
		return true
	}
	return false
}

// Breaker is a set of circuit breakers, one per key: per instance for calls whose context
// names one ([WithInstance], set by a load balancer), per endpoint ("Service.Method")
// otherwise. A circuit opens after ConsecutiveFailures failures in a row or when the
// failure rate over Window reaches FailureRate; an open circuit fails calls at once with
// svcerr.Unavailable (meta reason "circuit_open", and circuit "instance" or "endpoint");
// after OpenFor it turns half-open and
// lets HalfOpenProbes probe calls through, whose success closes it again.
//
// A Breaker is safe for concurrent use. Circuits are kept until [Breaker.Forget].
type Breaker struct {
	cfg      BreakerConfig
	circuits sync.Map // key -> *circuit
}

// NewBreaker returns a Breaker with all circuits closed.
func NewBreaker(cfg BreakerConfig) *Breaker {
	cfg.setDefaults()
	return &Breaker{cfg: cfg}
}

// Middleware returns client-side middleware that passes every call through the circuit
// of its instance or endpoint. Put it inside the load balancer, so that it sees the
// instance, and inside [Retry], so that a rejected call is retried elsewhere.
func (b *Breaker) Middleware() endpoint.Middleware {
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		if info.Streaming {
			return next
		}
		own := b.circuit(info.FullName(), "endpoint")
		return func(ctx context.Context, req any) (any, error) {
			c := own
			if inst := InstanceFrom(ctx); inst != "" {
				c = b.circuit(inst, "instance")
			}
			gen, probe, err := c.allow(b)
			if err != nil {
				return nil, err
			}
			resp, err := next(ctx, req)
			c.done(b, gen, probe, err, ctx.Err() == context.Canceled)
			return resp, err
		}
	}
}

// State returns the state of the circuit of key (an instance address or "Service.Method").
// A key never seen is Closed. An open circuit whose OpenFor has passed reports HalfOpen.
func (b *Breaker) State(key string) State {
	v, ok := b.circuits.Load(key)
	if !ok {
		return Closed
	}
	c := v.(*circuit)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Open && !time.Now().Before(c.until) {
		return HalfOpen
	}
	return c.state
}

// Allow reports whether a call to key would be let through now, without reserving a
// probe; a load balancer uses it to skip instances whose circuit is open.
func (b *Breaker) Allow(key string) bool {
	v, ok := b.circuits.Load(key)
	if !ok {
		return true
	}
	c := v.(*circuit)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case Open:
		return !time.Now().Before(c.until)
	case HalfOpen:
		return c.probes < b.cfg.HalfOpenProbes
	}
	return true
}

// Forget drops the circuit of key, for an instance that has left.
func (b *Breaker) Forget(key string) { b.circuits.Delete(key) }

func (b *Breaker) circuit(key, scope string) *circuit {
	if v, ok := b.circuits.Load(key); ok {
		return v.(*circuit)
	}
	v, _ := b.circuits.LoadOrStore(key, &circuit{key: key, scope: scope, bucketLen: b.cfg.Window / numBuckets})
	return v.(*circuit)
}

const numBuckets = 10

type bucket struct {
	slot            int64
	total, failures int
}

type circuit struct {
	key       string
	scope     string // "instance" or "endpoint", for rejections
	bucketLen time.Duration

	mu          sync.Mutex
	state       State
	gen         uint64 // incremented on every state change
	consecutive int
	buckets     [numBuckets]bucket
	until       time.Time // end of the open period
	probes      int       // probes in flight (half-open)
	probeOK     int       // successful probes (half-open)
}

// allow admits a call or returns the rejection. It returns the generation the call
// belongs to and whether it is a probe.
func (c *circuit) allow(b *Breaker) (gen uint64, probe bool, err error) {
	c.mu.Lock()
	var change *stateChange
	if c.state == Open {
		if time.Now().Before(c.until) {
			c.mu.Unlock()
			return 0, false, c.rejection()
		}
		change = c.setLocked(HalfOpen)
	}
	if c.state == HalfOpen {
		if c.probes >= b.cfg.HalfOpenProbes {
			c.mu.Unlock()
			b.notify(change)
			return 0, false, c.rejection()
		}
		c.probes++
		probe = true
	}
	gen = c.gen
	c.mu.Unlock()
	b.notify(change)
	return gen, probe, nil
}

func (c *circuit) rejection() error {
	return svcerr.Errorf(svcerr.Unavailable, "circuit breaker open for %s", c.key).
		WithMeta("reason", "circuit_open").WithMeta("circuit", c.scope)
}

// done records the outcome of a call admitted by allow.
func (c *circuit) done(b *Breaker, gen uint64, probe bool, err error, callerGone bool) {
	failed := err != nil && b.cfg.IsFailure(err)
	c.mu.Lock()
	if gen != c.gen { // the circuit changed state during the call
		c.mu.Unlock()
		return
	}
	var change *stateChange
	switch {
	case probe:
		c.probes--
		switch {
		case callerGone && failed:
		case failed:
			change = c.openLocked(b)
		default:
			c.probeOK++
			if c.probeOK >= b.cfg.HalfOpenProbes {
				change = c.setLocked(Closed)
			}
		}
	case callerGone && failed:
		// The caller gave up; that says nothing about the instance.
	default:
		now := time.Now()
		bk := c.bucketLocked(now)
		bk.total++
		if failed {
			bk.failures++
			c.consecutive++
		} else {
			c.consecutive = 0
		}
		if failed && c.tripLocked(b, now) {
			change = c.openLocked(b)
		}
	}
	c.mu.Unlock()
	b.notify(change)
}

func (c *circuit) bucketLocked(now time.Time) *bucket {
	slot := now.UnixNano() / int64(c.bucketLen)
	bk := &c.buckets[slot%numBuckets]
	if bk.slot != slot {
		*bk = bucket{slot: slot}
	}
	return bk
}

// tripLocked reports whether the failure counts call for opening the circuit.
func (c *circuit) tripLocked(b *Breaker, now time.Time) bool {
	if n := b.cfg.ConsecutiveFailures; n > 0 && c.consecutive >= n {
		return true
	}
	if b.cfg.FailureRate < 0 {
		return false
	}
	slot := now.UnixNano() / int64(c.bucketLen)
	total, failures := 0, 0
	for i := range c.buckets {
		if bk := &c.buckets[i]; bk.slot > slot-numBuckets {
			total += bk.total
			failures += bk.failures
		}
	}
	return total >= b.cfg.MinRequests && float64(failures) >= b.cfg.FailureRate*float64(total)
}

func (c *circuit) openLocked(b *Breaker) *stateChange {
	ch := c.setLocked(Open)
	c.until = time.Now().Add(b.cfg.OpenFor)
	return ch
}

type stateChange struct {
	key      string
	from, to State
}

// setLocked moves the circuit to state s and resets the counts of the new state.
func (c *circuit) setLocked(s State) *stateChange {
	ch := &stateChange{key: c.key, from: c.state, to: s}
	c.state = s
	c.gen++
	c.probes, c.probeOK = 0, 0
	if s == Closed {
		c.consecutive = 0
		c.buckets = [numBuckets]bucket{}
	}
	return ch
}

func (b *Breaker) notify(ch *stateChange) {
	if ch != nil && b.cfg.OnStateChange != nil {
		b.cfg.OnStateChange(ch.key, ch.from, ch.to)
	}
}
