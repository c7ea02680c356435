// Package fault injects faults into a service's calls on purpose: it delays and/or
// aborts a share of the calls of chosen methods with a chosen error kind, on the server
// side, the client side or both, so that retries, circuit breakers, timeouts and sagas
// can be watched doing their work.
//
// An [Injector] holds the active rules; [Injector.Middleware] is endpoint middleware that
// applies them. Rules change at run time without a restart — [Injector.Set], [Injector.Add],
// [Injector.Remove], or the admin API of [Injector.Handler], which svckit serves on the
// admin listener when FAULT_TOKEN is set — and end by themselves at their Until time:
//
//	inj := fault.New()
//	app.Use(inj.Middleware())
//	inj.Add(fault.Rule{Method: "payments.Charge", Delay: 500 * time.Millisecond, For: time.Minute})
//	inj.Add(fault.Rule{Method: "catalog.Reserve", AbortPercent: 20, Kind: svcerr.Unavailable})
//
// An injected fault is an ordinary failure to everything around it: an aborted call
// returns an *svcerr.Error of the rule's kind, so retries and breakers treat it as they
// would a real one. It is also marked: the call's span gets the attribute
// fault.injected=true and a "fault.injected" event, and [Injector.Collector] counts
// svckit_faults_injected_total{method, kind} (kind "delay" for a delay, the error kind for
// an abort).
//
// With no rules the middleware costs one atomic load per call.
package fault

import (
	"context"
	"crypto/subtle"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// InjectedKey is the span attribute set on the span of a call that got a fault.
const InjectedKey = attribute.Key("fault.injected")

// The headers of faults asked for by a caller (see [WithHeader]).
const (
	// Header carries the fault a caller asks for, in [ParseSpec]'s form.
	Header = "X-Svckit-Fault"
	// TokenHeader carries the token that authorizes the caller's Header.
	TokenHeader = "X-Svckit-Fault-Token"
)

// Message is the message of the error of an aborted call.
const Message = "injected fault"

// Injector holds fault rules and applies them to calls through [Injector.Middleware]. It
// is safe for concurrent use; rules are replaced as a whole (an atomic swap), so calls
// never wait for a change.
type Injector struct {
	rules atomic.Pointer[ruleSet] // nil: no rules
	mu    sync.Mutex              // serializes changes
	now   func() time.Time
	rand  func() float64 // in [0, 1)
	count *prometheus.CounterVec
	token string // WithHeader's token; "" turns header faults off
}

// ruleSet is one generation of rules; a new set replaces it on every change.
type ruleSet struct{ rules []Rule }

// Option configures an Injector.
type Option func(*Injector)

// WithClock sets the clock that rules' Until times are compared with (default time.Now).
func WithClock(now func() time.Time) Option { return func(i *Injector) { i.now = now } }

// WithRand sets the source of the random numbers in [0, 1) that pick calls (default
// math/rand/v2's Float64).
func WithRand(f func() float64) Option { return func(i *Injector) { i.rand = f } }

// WithHeader turns on faults asked for per call by the caller: a served call whose
// request carries the [Header] header (X-Svckit-Fault: delay=300ms abort=unavailable, in
// [ParseSpec]'s form) gets that fault if it also carries [TokenHeader] with token. Without
// the right token the header is ignored, as if it were absent, so it tells an
// unauthorized caller nothing; an authorized caller's malformed header fails the call
// with InvalidArgument. The fault applies to that call on this server only; it is not
// passed on to the calls the server makes. An empty token leaves header faults off.
func WithHeader(token string) Option { return func(i *Injector) { i.token = token } }

// New returns an Injector without rules.
func New(opts ...Option) *Injector {
	i := &Injector{
		now:  time.Now,
		rand: rand.Float64,
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "svckit", Name: "faults_injected_total",
			Help: "Faults injected on purpose, by method (Service.Method) and kind: delay, or the error kind of an abort.",
		}, []string{"method", "kind"}),
	}
	for _, o := range opts {
		o(i)
	}
	return i
}

// Collector returns the counter svckit_faults_injected_total{method, kind}, to register
// on a Prometheus registry.
func (i *Injector) Collector() prometheus.Collector { return i.count }

// Set replaces the rules with rules. A rule's For becomes an Until counted from now. If
// any rule is invalid, or there are more than MaxRules, nothing changes and the error
// names the rule.
func (i *Injector) Set(rules ...Rule) error {
	if len(rules) > MaxRules {
		return fmt.Errorf("fault: %d rules, more than %d", len(rules), MaxRules)
	}
	now := i.now()
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		nr, err := r.normalize(now)
		if err != nil {
			return fmt.Errorf("fault: %w", err)
		}
		out = append(out, nr)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.store(out)
	return nil
}

// Add adds r, replacing the rule with the same Method and Side if there is one.
func (i *Injector) Add(r Rule) error {
	now := i.now()
	nr, err := r.normalize(now)
	if err != nil {
		return fmt.Errorf("fault: %w", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	rules := i.activeLocked(now)
	if k := slices.IndexFunc(rules, func(o Rule) bool { return o.Method == nr.Method && o.Side == nr.Side }); k >= 0 {
		rules[k] = nr
	} else {
		if len(rules) >= MaxRules {
			return fmt.Errorf("fault: %d rules already, the most an injector holds", MaxRules)
		}
		rules = append(rules, nr)
	}
	i.store(rules)
	return nil
}

// Remove removes the rule with method and side and reports whether there was one.
func (i *Injector) Remove(method string, side Side) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	rules := i.activeLocked(i.now())
	k := slices.IndexFunc(rules, func(o Rule) bool { return o.Method == method && o.Side == side })
	if k < 0 {
		return false
	}
	i.store(slices.Delete(rules, k, k+1))
	return true
}

// Clear removes every rule.
func (i *Injector) Clear() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.rules.Store(nil)
}

// Rules returns the rules that have not ended, in the order they apply.
func (i *Injector) Rules() []Rule {
	rules := i.activeAt(i.rules.Load(), i.now())
	if rules == nil {
		rules = []Rule{}
	}
	return rules
}

// activeLocked returns a copy of the rules that have not ended at now.
func (i *Injector) activeLocked(now time.Time) []Rule { return i.activeAt(i.rules.Load(), now) }

func (i *Injector) activeAt(set *ruleSet, now time.Time) []Rule {
	if set == nil {
		return nil
	}
	var out []Rule
	for _, r := range set.rules {
		if r.active(now) {
			out = append(out, r)
		}
	}
	return out
}

// store publishes rules; no rules store nil, so that calls skip the injector at once.
func (i *Injector) store(rules []Rule) {
	if len(rules) == 0 {
		i.rules.Store(nil)
		return
	}
	i.rules.Store(&ruleSet{rules: rules})
}

// expire drops set if every rule in it has ended, so that calls skip the injector again.
func (i *Injector) expire(set *ruleSet, now time.Time) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.rules.Load() == set {
		i.store(i.activeAt(set, now))
	}
}

// matched is the rules of one generation that apply to one endpoint.
type matched struct {
	set   *ruleSet
	rules []*Rule
}

// Middleware returns endpoint middleware that applies the injector's rules to the calls
// of the endpoints it wraps, on servers and clients (endpoint.Info.Client tells them
// apart). Put it inside tracing and metrics, so that a fault shows in the call's span and
// in the request metrics, and inside the request timeout, so that a delay counts against
// the call's deadline. A nil Injector's Middleware is [endpoint.Nop].
func (i *Injector) Middleware() endpoint.Middleware {
	if i == nil {
		return endpoint.Nop
	}
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		name := info.FullName()
		header := i.token != "" && !info.Client && !info.Streaming
		var cache atomic.Pointer[matched]
		return func(ctx context.Context, req any) (any, error) {
			set := i.rules.Load()
			if set == nil && !header {
				return next(ctx, req)
			}
			var rules []*Rule
			if set != nil {
				m := cache.Load()
				if m == nil || m.set != set {
					m = &matched{set: set}
					for k := range set.rules {
						r := &set.rules[k]
						if ok, _ := path.Match(r.Method, name); ok && r.Side.matches(info.Client) {
							m.rules = append(m.rules, r)
						}
					}
					cache.Store(m)
				}
				rules = m.rules
			}
			if header {
				if h := meta.Header(ctx, Header); h != "" && i.authorized(ctx) {
					r, err := ParseSpec(name, h)
					r.For = 0 // the call is the rule's lifetime
					if err == nil {
						r, err = r.normalize(time.Time{})
					}
					if err != nil {
						return nil, svcerr.Errorf(svcerr.InvalidArgument, "%s header: %v", Header, err)
					}
					rules = append(slices.Clip(rules), &r)
				}
			}
			if len(rules) == 0 {
				return next(ctx, req)
			}
			if err := i.apply(ctx, name, set, rules); err != nil {
				return nil, err
			}
			return next(ctx, req)
		}
	}
}

// authorized reports whether the call carries the header token.
func (i *Injector) authorized(ctx context.Context) bool {
	t := meta.Header(ctx, TokenHeader)
	return t != "" && subtle.ConstantTimeCompare([]byte(t), []byte(i.token)) == 1
}

// apply rolls the dice of rules for one call: it waits for the delays that hit and
// returns the error of the first abort that hits.
func (i *Injector) apply(ctx context.Context, name string, set *ruleSet, rules []*Rule) error {
	var now time.Time // read only if a rule ends: the clock costs more than the rest
	var delay time.Duration
	var abort *Rule
	live := 0
	for _, r := range rules {
		if !r.Until.IsZero() {
			if now.IsZero() {
				now = i.now()
			}
			if !r.active(now) {
				continue
			}
		}
		live++
		if r.DelayPercent > 0 && i.rand()*100 < r.DelayPercent {
			delay += r.Delay
		}
		if abort == nil && r.AbortPercent > 0 && i.rand()*100 < r.AbortPercent {
			abort = r
		}
	}
	if live == 0 && set != nil && len(rules) > 0 {
		// Every rule of this endpoint ended; drop the set if all its rules did.
		if len(i.activeAt(set, now)) == 0 {
			i.expire(set, now)
		}
	}
	span := trace.SpanFromContext(ctx)
	if delay > 0 {
		i.count.WithLabelValues(name, "delay").Inc()
		if span.IsRecording() {
			span.SetAttributes(InjectedKey.Bool(true))
			span.AddEvent("fault.injected", trace.WithAttributes(
				attribute.String("fault.kind", "delay"), attribute.Int64("fault.delay_ms", delay.Milliseconds())))
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
			// The context may have ended too, by the time this goroutine ran: select
			// picks either. A call whose deadline passed during its delay fails, as it
			// would behind a slow dependency.
			if err := ctx.Err(); err != nil {
				return err
			}
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	if abort != nil {
		kind := abort.Kind.String()
		i.count.WithLabelValues(name, kind).Inc()
		if span.IsRecording() {
			span.SetAttributes(InjectedKey.Bool(true))
			span.AddEvent("fault.injected", trace.WithAttributes(attribute.String("fault.kind", kind)))
		}
		return svcerr.New(abort.Kind, Message)
	}
	return nil
}
