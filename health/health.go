// Package health reports whether a service is alive and whether it is ready to take traffic.
//
// A [Health] holds two sets of named checks. Liveness checks answer "should this process be
// restarted?" and should only fail when the process is wedged. Readiness checks answer
// "should this instance receive requests now?" and typically probe the dependencies a
// request needs (the store, a downstream service).
//
// Readiness also has a manual gate. It starts closed: a new Health is not ready until
// [Health.SetReady](true) is called, which the run package does once every listener is up;
// it closes again at the start of a graceful shutdown so load balancers take the instance
// out of rotation before its listeners stop. [Health.Watch] reports gate changes, which is
// how the gRPC health service is made to follow readiness.
//
// Checks run concurrently, each bounded by a timeout, and their results are cached for a
// short time so that frequent probes cannot overload the dependencies they probe.
// [Health.LiveHandler] and [Health.ReadyHandler] serve the reports as JSON, and [AdminMux]
// puts them on an admin listener together with /metrics and, when asked for
// ([WithPprof]), /debug/pprof.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Status values of a [Report] and of a [CheckResult].
const (
	StatusOK   = "ok"
	StatusFail = "fail"
)

// GateCheck is the name under which a closed readiness gate appears in a readiness
// [Report]. It is reserved: no readiness check may use it.
const GateCheck = "gate"

// Check probes one thing. It returns nil when the thing is healthy. A check must respect
// ctx, which carries the per-check timeout.
type Check func(ctx context.Context) error

// CheckResult is the outcome of one check.
type CheckResult struct {
	// Status is StatusOK or StatusFail.
	Status string
	// Error is the check's error text; empty when Status is StatusOK.
	Error string
	// Duration is how long the check took, or the timeout if it did not finish.
	Duration time.Duration
}

type checkResultJSON struct {
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	Duration string `json:"duration,omitempty"`
}

// MarshalJSON encodes r as {"status":"fail","error":"…","duration":"1.5ms"}; error is
// omitted when empty and duration is a Go duration string.
func (r CheckResult) MarshalJSON() ([]byte, error) {
	j := checkResultJSON{Status: r.Status, Error: r.Error}
	if r.Duration > 0 {
		j.Duration = r.Duration.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form written by MarshalJSON.
func (r *CheckResult) UnmarshalJSON(b []byte) error {
	var j checkResultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = CheckResult{Status: j.Status, Error: j.Error}
	if j.Duration != "" {
		d, err := time.ParseDuration(j.Duration)
		if err != nil {
			return fmt.Errorf("health: check duration: %w", err)
		}
		r.Duration = d
	}
	return nil
}

// Report is the outcome of running a set of checks.
type Report struct {
	// Status is StatusOK when every check passed, StatusFail otherwise.
	Status string `json:"status"`
	// Checks holds the result of each check by name. It is never nil.
	Checks map[string]CheckResult `json:"checks"`
}

// OK reports whether r.Status is StatusOK.
func (r Report) OK() bool { return r.Status == StatusOK }

// Failed returns the results of the checks that failed.
func (r Report) Failed() map[string]CheckResult {
	out := make(map[string]CheckResult)
	for name, c := range r.Checks {
		if c.Status != StatusOK {
			out[name] = c
		}
	}
	return out
}

// Option configures a [Health].
type Option func(*Health)

// WithTimeout sets how long each check may run before it counts as failed. The default is
// 2s. A value of zero or less keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(h *Health) {
		if d > 0 {
			h.timeout = d
		}
	}
}

// WithCacheTTL sets how long the result of running a set of checks is reused. The default
// is 1s; zero disables caching. Concurrent requests always share one run of the checks.
func WithCacheTTL(d time.Duration) Option {
	return func(h *Health) {
		if d >= 0 {
			h.ttl = d
		}
	}
}

// Health holds liveness and readiness checks and the readiness gate. Its zero value is not
// usable; create one with [New]. A Health is safe for concurrent use.
type Health struct {
	timeout time.Duration
	ttl     time.Duration

	live, ready *checkSet

	notifyMu sync.Mutex // serializes gate changes with their notifications
	mu       sync.Mutex // guards the fields below
	gate     bool
	opened   bool // the gate has been open at least once
	watchers []func(ready bool)
}

// New returns a Health with no checks and a closed readiness gate.
func New(opts ...Option) *Health {
	h := &Health{timeout: 2 * time.Second, ttl: time.Second}
	for _, o := range opts {
		o(h)
	}
	h.live = newCheckSet(h)
	h.ready = newCheckSet(h)
	return h
}

// AddLiveness adds a liveness check. It panics if c is nil or name is empty or already
// used by another liveness check.
func (h *Health) AddLiveness(name string, c Check) {
	h.live.add("liveness", name, c)
}

// AddReadiness adds a readiness check. It panics if c is nil or name is empty, is
// [GateCheck], or is already used by another readiness check.
func (h *Health) AddReadiness(name string, c Check) {
	if name == GateCheck {
		panic("health: readiness check name " + GateCheck + " is reserved")
	}
	h.ready.add("readiness", name, c)
}

// SetReady opens (true) or closes (false) the readiness gate. While the gate is closed the
// instance is not ready whatever its checks say, and readiness checks are not run. The gate
// starts closed. Watchers are notified, in order, only when the gate actually changes.
func (h *Health) SetReady(ready bool) {
	h.notifyMu.Lock()
	defer h.notifyMu.Unlock()
	h.mu.Lock()
	if h.gate == ready {
		h.mu.Unlock()
		return
	}
	h.gate = ready
	if ready {
		h.opened = true
	}
	ws := slices.Clone(h.watchers)
	h.mu.Unlock()
	for _, w := range ws {
		w(ready)
	}
}

// Watch registers fn to be told about readiness gate changes. fn is called once right away
// with the current state, then after every change, synchronously and in order of the
// changes. fn must not call SetReady or Watch.
//
// A gRPC service makes its health service follow readiness like this:
//
//	hs := grpchealth.NewServer()
//	h.Watch(func(ready bool) {
//		st := healthpb.HealthCheckResponse_NOT_SERVING
//		if ready {
//			st = healthpb.HealthCheckResponse_SERVING
//		}
//		hs.SetServingStatus("", st)
//	})
func (h *Health) Watch(fn func(ready bool)) {
	if fn == nil {
		return
	}
	h.notifyMu.Lock()
	defer h.notifyMu.Unlock()
	h.mu.Lock()
	h.watchers = append(h.watchers, fn)
	cur := h.gate
	h.mu.Unlock()
	fn(cur)
}

// Ready runs the readiness checks (or reuses a recent result) and returns the report. When
// the gate is closed it returns at once a failing report with the single entry
// [GateCheck].
func (h *Health) Ready(ctx context.Context) Report {
	h.mu.Lock()
	gate, opened := h.gate, h.opened
	h.mu.Unlock()
	if !gate {
		msg := "not ready: starting"
		if opened {
			msg = "not ready: draining"
		}
		return Report{Status: StatusFail, Checks: map[string]CheckResult{
			GateCheck: {Status: StatusFail, Error: msg},
		}}
	}
	return h.ready.report(ctx)
}

// Live runs the liveness checks (or reuses a recent result) and returns the report.
func (h *Health) Live(ctx context.Context) Report {
	return h.live.report(ctx)
}

// checkSet is one ordered set of named checks with its cached report.
type checkSet struct {
	h *Health

	mu       sync.Mutex
	checks   []*check
	gen      uint64 // bumped by add; a run started under an older gen is not cached
	cached   Report
	cachedAt time.Time
	hasCache bool
	inflight *flight
}

type flight struct {
	done chan struct{}
	rep  Report
}

func newCheckSet(h *Health) *checkSet { return &checkSet{h: h} }

func (s *checkSet) add(kind, name string, c Check) {
	if name == "" {
		panic("health: " + kind + " check with empty name")
	}
	if c == nil {
		panic("health: nil " + kind + " check " + name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.checks {
		if x.name == name {
			panic("health: duplicate " + kind + " check " + name)
		}
	}
	s.checks = append(s.checks, &check{name: name, fn: c})
	s.gen++
	s.hasCache = false
}

func (s *checkSet) report(ctx context.Context) Report {
	s.mu.Lock()
	if s.hasCache && time.Since(s.cachedAt) < s.h.ttl {
		rep := s.cached
		s.mu.Unlock()
		return clone(rep)
	}
	if f := s.inflight; f != nil {
		s.mu.Unlock()
		<-f.done // bounded: every check gives up after the timeout
		return clone(f.rep)
	}
	f := &flight{done: make(chan struct{})}
	s.inflight = f
	checks := slices.Clone(s.checks)
	gen := s.gen
	s.mu.Unlock()

	// The run is shared by every caller that arrives while it is in flight, so it must not
	// end because the first caller went away; it keeps ctx's values only.
	f.rep = runChecks(context.WithoutCancel(ctx), checks, s.h.timeout)

	s.mu.Lock()
	s.inflight = nil
	if gen == s.gen && s.h.ttl > 0 {
		s.cached, s.cachedAt, s.hasCache = f.rep, time.Now(), true
	}
	s.mu.Unlock()
	close(f.done)
	return clone(f.rep)
}

func clone(r Report) Report {
	r.Checks = maps.Clone(r.Checks)
	if r.Checks == nil {
		r.Checks = map[string]CheckResult{}
	}
	return r
}

func runChecks(ctx context.Context, checks []*check, timeout time.Duration) Report {
	rep := Report{Status: StatusOK, Checks: make(map[string]CheckResult, len(checks))}
	results := make([]CheckResult, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = c.run(ctx, timeout) })
	}
	wg.Wait()
	for i, c := range checks {
		rep.Checks[c.name] = results[i]
		if results[i].Status != StatusOK {
			rep.Status = StatusFail
		}
	}
	return rep
}

// check is one named check. At most one call of fn runs at a time: if a previous call
// overran its timeout and is still running, the next run waits for it instead of starting
// another, so a check that ignores its context cannot pile up goroutines.
type check struct {
	name string
	fn   Check

	mu  sync.Mutex
	cur *call
}

type call struct {
	done chan struct{}
	err  error
}

func (c *check) run(ctx context.Context, timeout time.Duration) CheckResult {
	c.mu.Lock()
	cl := c.cur
	if cl == nil {
		cl = &call{done: make(chan struct{})}
		c.cur = cl
		go func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			cl.err = safeCall(cctx, c.fn)
			c.mu.Lock()
			c.cur = nil
			c.mu.Unlock()
			close(cl.done)
		}()
	}
	c.mu.Unlock()

	start := time.Now()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-cl.done:
		d := time.Since(start)
		switch {
		case cl.err == nil:
			return CheckResult{Status: StatusOK, Duration: d}
		case errors.Is(cl.err, context.DeadlineExceeded):
			return CheckResult{Status: StatusFail, Error: fmt.Sprintf("timed out after %s: %v", timeout, cl.err), Duration: d}
		default:
			return CheckResult{Status: StatusFail, Error: cl.err.Error(), Duration: d}
		}
	case <-t.C:
		return CheckResult{Status: StatusFail, Error: fmt.Sprintf("timed out after %s", timeout), Duration: timeout}
	}
}

func safeCall(ctx context.Context, fn Check) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("check panicked: %v", r)
		}
	}()
	return fn(ctx)
}
