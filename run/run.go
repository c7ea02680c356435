// Package run manages a service process's lifecycle: it starts the long-running parts of a
// service (listeners, consumers, workers), waits until the process is asked to stop, and
// then shuts everything down gracefully and in a defined order.
//
// A [Group] runs actors, each a pair of functions: run blocks doing the work (serving a
// listener) and stop makes run return, draining gracefully within its context's deadline.
// Shutdown begins on SIGINT or SIGTERM, when the context given to [Group.Run] is canceled,
// when an actor's run returns, or when an OnReady hook fails. It then goes through these
// steps:
//
//  1. [PhaseNotReady] hooks: readiness goes to not-ready, so load balancers stop sending
//     new requests.
//  2. The drain delay ([WithDrainDelay]): the listeners keep serving while load balancers
//     notice.
//  3. [PhaseDrain]: the stop funcs of all actors run concurrently, then the group waits for
//     every run func to return; in-flight requests finish here.
//  4. [PhaseClose] hooks: stores and connections close.
//  5. [PhaseFlush] hooks: traces and logs flush.
//
// Steps 1, 3, 4 and 5 each have their own deadline, the shutdown timeout
// ([WithShutdownTimeout]), and nothing waits past it: a hook or actor that overruns is
// reported and left behind. Usually only the drain takes long; the worst case is the drain
// delay plus four timeouts, which should stay below the orchestrator's grace period
// (30s by default on Kubernetes). A second signal during shutdown makes [Group.Run] return
// at once with an error wrapping [ErrForced].
//
// [HTTPServer] and [GRPCServer] adapt servers to actors.
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"
)

// ErrForced is wrapped by the error [Group.Run] returns when a second signal arrives during
// shutdown and the shutdown is abandoned.
var ErrForced = errors.New("run: shutdown forced")

// Phase is a step of the shutdown sequence that hooks can be registered for.
type Phase int

// The shutdown phases, in the order they run.
const (
	// PhaseNotReady runs first: flip readiness to not-ready.
	PhaseNotReady Phase = iota
	// PhaseDrain runs concurrently with the actors' stop funcs, under the same deadline.
	PhaseDrain
	// PhaseClose runs after every actor has stopped: close stores and connections.
	PhaseClose
	// PhaseFlush runs last: flush traces, metrics and logs.
	PhaseFlush
	numPhases
)

// String returns "not_ready", "drain", "close" or "flush".
func (p Phase) String() string {
	switch p {
	case PhaseNotReady:
		return "not_ready"
	case PhaseDrain:
		return "drain"
	case PhaseClose:
		return "close"
	case PhaseFlush:
		return "flush"
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// Option configures a [Group].
type Option func(*Group)

// WithLogger sets the logger that reports start-up and shutdown progress. The default is
// slog.Default(); nil discards the logs.
func WithLogger(l *slog.Logger) Option {
	return func(g *Group) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		g.logger = l
	}
}

// WithSignals sets the signals that start a shutdown. The default is SIGINT and SIGTERM.
// With no signals, the group does not handle signals at all.
func WithSignals(sigs ...os.Signal) Option {
	return func(g *Group) { g.signals = slices.Clone(sigs) }
}

// WithShutdownTimeout sets the deadline of each shutdown step: the PhaseNotReady hooks, the
// drain (stop funcs and run funcs returning), the PhaseClose hooks and the PhaseFlush
// hooks. The default is 15s; a value of zero or less keeps it.
func WithShutdownTimeout(d time.Duration) Option {
	return func(g *Group) {
		if d > 0 {
			g.timeout = d
		}
	}
}

// WithDrainDelay sets how long to wait between the PhaseNotReady hooks and stopping the
// actors, so that load balancers see the instance as not ready before its listeners stop.
// The default is 0; services behind a load balancer typically use 1–5s.
func WithDrainDelay(d time.Duration) Option {
	return func(g *Group) {
		if d >= 0 {
			g.drainDelay = d
		}
	}
}

// Group runs actors until one returns or a shutdown is requested, then stops all of them
// and runs the shutdown hooks in phase order. Create one with [NewGroup], register actors
// and hooks, then call [Group.Run] once.
type Group struct {
	logger     *slog.Logger
	signals    []os.Signal
	timeout    time.Duration
	drainDelay time.Duration

	mu      sync.Mutex
	started bool
	actors  []*actor
	ready   []hook
	hooks   [numPhases][]hook
}

type actor struct {
	name string
	run  func(ctx context.Context) error
	stop func(ctx context.Context) error

	cancel  context.CancelFunc
	entered chan struct{} // closed just before run is called
	done    chan struct{} // closed when run has returned; err is then set
	err     error
}

type hook struct {
	name string
	fn   func(ctx context.Context) error
}

// NewGroup returns an empty Group.
func NewGroup(opts ...Option) *Group {
	g := &Group{
		logger:  slog.Default(),
		signals: []os.Signal{os.Interrupt, syscall.SIGTERM},
		timeout: 15 * time.Second,
	}
	for _, o := range opts {
		o(g)
	}
	return g
}

// Add registers a long-running actor. run blocks doing the actor's work until stop is
// called or its context is canceled; stop makes run return, finishing in-flight work within
// its context's deadline. stop may be nil: the actor is then stopped by canceling run's
// context, which also happens after stop returns. stop is called even if run has already
// returned, so it must tolerate that.
//
// Actors start in the order they were added, each in its own goroutine, and are stopped
// concurrently. Add panics if called after Run or with a nil run.
func (g *Group) Add(name string, run func(ctx context.Context) error, stop func(ctx context.Context) error) {
	if run == nil {
		panic("run: Add " + name + " with nil run func")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		panic("run: Add " + name + " after Run")
	}
	g.actors = append(g.actors, &actor{name: name, run: run, stop: stop})
}

// OnReady registers a hook that runs once every actor's run func has been called, typically
// to open the readiness gate. Listeners passed to [HTTPServer] and [GRPCServer] are bound before
// Run, so connections made after the hook are accepted. Hooks run in registration order
// with a context that is canceled when shutdown begins; an error starts a shutdown and is
// returned by Run. OnReady panics if called after Run.
func (g *Group) OnReady(name string, fn func(ctx context.Context) error) {
	g.addHook(&g.ready, "OnReady", name, fn)
}

// OnShutdown registers a hook for a shutdown phase. Hooks of one phase run one after the
// other in reverse registration order, like deferred calls, so that what was set up last is
// torn down first; PhaseDrain hooks instead run concurrently with the actors' stop funcs.
// Every phase's hooks run, whatever the earlier phases returned. OnShutdown panics if
// called after Run or with an unknown phase.
func (g *Group) OnShutdown(phase Phase, name string, fn func(ctx context.Context) error) {
	if phase < 0 || phase >= numPhases {
		panic(fmt.Sprintf("run: OnShutdown with unknown %v", phase))
	}
	g.addHook(&g.hooks[phase], "OnShutdown", name, fn)
}

func (g *Group) addHook(list *[]hook, method, name string, fn func(ctx context.Context) error) {
	if fn == nil {
		panic("run: " + method + " " + name + " with nil func")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		panic("run: " + method + " " + name + " after Run")
	}
	*list = append(*list, hook{name: name, fn: fn})
}

// Run starts the actors, runs the OnReady hooks, waits for a signal, for ctx to be
// canceled, for an OnReady hook to fail or for the first actor's run to return, and then
// shuts down as described in the package documentation.
//
// Run returns nil after a shutdown requested by a signal or by canceling ctx, if every step
// finished in time and without error. If an actor's run started the shutdown, Run returns
// its error (nil if it returned nil). Errors from the shutdown itself — a stop func or hook
// that failed, an actor that did not stop within the deadline (the error names it) — are
// joined to that. A second signal during shutdown makes Run return at once with an error
// wrapping [ErrForced]; the caller should then exit the process.
//
// Run may be called only once. The actors' contexts carry ctx's values but are not
// canceled with it: they are stopped in order instead.
func (g *Group) Run(ctx context.Context) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return errors.New("run: Group.Run called twice")
	}
	g.started = true
	g.mu.Unlock()

	var sigs chan os.Signal
	if len(g.signals) > 0 {
		sigs = make(chan os.Signal, 2)
		signal.Notify(sigs, g.signals...)
		defer signal.Stop(sigs)
	}

	base := context.WithoutCancel(ctx)
	exits := make(chan *actor, len(g.actors))
	for _, a := range g.actors {
		actx, cancel := context.WithCancel(base)
		a.cancel = cancel
		a.entered = make(chan struct{})
		a.done = make(chan struct{})
		g.logger.Info("actor starting", "actor", a.name)
		go func() {
			close(a.entered)
			a.err = g.safeCall(actx, "actor "+a.name, a.run)
			close(a.done)
			exits <- a
		}()
	}

	readyCtx, readyCancel := context.WithCancel(base)
	defer readyCancel()
	readyDone := make(chan error, 1)
	go func() { readyDone <- g.runReady(readyCtx) }()

	var (
		reason  string
		cause   error
		trigger *actor
		readyCh = readyDone
	)
wait:
	for {
		select {
		case sig := <-sigs:
			reason = "signal " + sig.String()
			break wait
		case <-ctx.Done():
			reason = "context canceled"
			break wait
		case a := <-exits:
			trigger = a
			reason = fmt.Sprintf("actor %q exited", a.name)
			if a.err != nil {
				cause = fmt.Errorf("run: actor %q: %w", a.name, a.err)
			}
			break wait
		case err := <-readyCh:
			readyCh = nil
			if err != nil {
				reason = "OnReady hook failed"
				cause = err
				break wait
			}
			g.logger.Info("ready", "actors", len(g.actors))
		}
	}
	if cause != nil {
		g.logger.Error("shutdown started", "reason", reason, "error", cause)
	} else {
		g.logger.Info("shutdown started", "reason", reason)
	}

	forced := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- g.shutdown(base, trigger, readyCancel, readyCh, forced)
	}()
	select {
	case err := <-result:
		return errors.Join(cause, err)
	case sig := <-sigs:
		close(forced)
		g.logger.Error("shutdown forced", "signal", sig.String())
		return errors.Join(cause, fmt.Errorf("%w by a second signal (%v) during shutdown", ErrForced, sig))
	}
}

// runReady runs the OnReady hooks once every actor's run func has been called, unless an
// actor has already exited or shutdown has begun.
func (g *Group) runReady(ctx context.Context) error {
	for _, a := range g.actors {
		select {
		case <-a.entered:
		case <-ctx.Done():
			return nil
		}
	}
	for _, a := range g.actors {
		select {
		case <-a.done:
			return nil // shutdown is coming; do not open the gate
		default:
		}
	}
	for _, h := range g.ready {
		if err := g.safeCall(ctx, "OnReady hook "+h.name, h.fn); err != nil {
			return fmt.Errorf("run: OnReady hook %q: %w", h.name, err)
		}
	}
	return nil
}

// shutdown runs the shutdown steps and returns the errors of the steps. readyDone is nil
// if the OnReady hooks have already returned.
func (g *Group) shutdown(base context.Context, trigger *actor, readyCancel context.CancelFunc, readyDone <-chan error, forced <-chan struct{}) error {
	start := time.Now()
	var errs []error

	// OnReady hooks still running must not open the gate after PhaseNotReady closed it.
	readyCancel()
	if readyDone != nil {
		t := time.NewTimer(g.timeout)
		select {
		case <-readyDone: // a hook error here is a consequence of the cancellation
		case <-t.C:
			errs = append(errs, fmt.Errorf("run: OnReady hooks did not return within %s", g.timeout))
		case <-forced:
			t.Stop()
			return nil
		}
		t.Stop()
	}

	errs = append(errs, g.runHooks(base, PhaseNotReady, forced)...)

	if g.drainDelay > 0 {
		g.logger.Info("shutdown: drain delay", "delay", g.drainDelay)
		t := time.NewTimer(g.drainDelay)
		select {
		case <-t.C:
		case <-forced:
			t.Stop()
			return nil
		}
	}

	errs = append(errs, g.drain(base, trigger)...)
	errs = append(errs, g.runHooks(base, PhaseClose, forced)...)
	errs = append(errs, g.runHooks(base, PhaseFlush, forced)...)

	err := errors.Join(errs...)
	if err != nil {
		g.logger.Error("shutdown complete", "duration", time.Since(start), "error", err)
	} else {
		g.logger.Info("shutdown complete", "duration", time.Since(start))
	}
	return err
}

// runHooks runs the hooks of phase in reverse registration order under one deadline.
func (g *Group) runHooks(base context.Context, phase Phase, forced <-chan struct{}) []error {
	hooks := g.hooks[phase]
	if len(hooks) == 0 {
		return nil
	}
	g.logger.Info("shutdown: phase", "phase", phase.String(), "hooks", len(hooks))
	ctx, cancel := context.WithTimeout(base, g.timeout)
	defer cancel()
	var errs []error
	for _, h := range slices.Backward(hooks) {
		select {
		case <-forced:
			return errs
		default:
		}
		t0 := time.Now()
		err := g.boundedCall(ctx, phase.String()+" hook "+h.name, h.fn)
		if err != nil {
			err = fmt.Errorf("run: %s hook %q: %w", phase, h.name, err)
			g.logger.Error("shutdown: hook failed", "phase", phase.String(), "hook", h.name, "duration", time.Since(t0), "error", err)
			errs = append(errs, err)
			continue
		}
		g.logger.Info("shutdown: hook done", "phase", phase.String(), "hook", h.name, "duration", time.Since(t0))
	}
	return errs
}

// drain stops every actor and runs the PhaseDrain hooks, all concurrently under one
// deadline, and waits for the actors' run funcs to return.
func (g *Group) drain(base context.Context, trigger *actor) []error {
	g.logger.Info("shutdown: phase", "phase", PhaseDrain.String(), "actors", len(g.actors), "timeout", g.timeout)
	ctx, cancel := context.WithTimeout(base, g.timeout)
	defer cancel()

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	add := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, a := range g.actors {
		wg.Go(func() {
			if err := g.stopActor(ctx, a, a == trigger); err != nil {
				add(err)
			}
		})
	}
	for _, h := range g.hooks[PhaseDrain] {
		wg.Go(func() {
			if err := g.boundedCall(ctx, "drain hook "+h.name, h.fn); err != nil {
				err = fmt.Errorf("run: drain hook %q: %w", h.name, err)
				g.logger.Error("shutdown: hook failed", "phase", PhaseDrain.String(), "hook", h.name, "error", err)
				add(err)
			}
		})
	}
	wg.Wait() // every goroutine above gives up at the deadline
	return errs
}

func (g *Group) stopActor(ctx context.Context, a *actor, isTrigger bool) error {
	t0 := time.Now()
	var stopErr error
	if a.stop != nil {
		stopErr = g.boundedCall(ctx, "stop "+a.name, a.stop)
	}
	a.cancel()

	select {
	case <-a.done:
	default:
		select {
		case <-a.done:
		case <-ctx.Done():
			err := fmt.Errorf("run: actor %q did not stop within %s", a.name, g.timeout)
			if stopErr != nil {
				err = fmt.Errorf("%w: %w", err, stopErr)
			}
			g.logger.Error("actor did not stop in time", "actor", a.name, "error", err)
			return err
		}
	}

	var err error
	switch {
	case stopErr != nil && (errors.Is(stopErr, context.DeadlineExceeded) || ctx.Err() != nil):
		err = fmt.Errorf("run: actor %q did not stop within %s: %w", a.name, g.timeout, stopErr)
	case stopErr != nil:
		err = fmt.Errorf("run: stopping actor %q: %w", a.name, stopErr)
	case !isTrigger && a.err != nil && !errors.Is(a.err, context.Canceled):
		err = fmt.Errorf("run: actor %q: %w", a.name, a.err)
	}
	if err != nil {
		g.logger.Error("actor stopped", "actor", a.name, "duration", time.Since(t0), "error", err)
		return err
	}
	g.logger.Info("actor stopped", "actor", a.name, "duration", time.Since(t0))
	return nil
}

// boundedCall calls fn and returns its error, or gives up when ctx is done, so that a func
// ignoring its context cannot hold up the shutdown.
func (g *Group) boundedCall(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- g.safeCall(ctx, what, fn) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		select {
		case err := <-done:
			return err
		default:
			return fmt.Errorf("did not return in time: %w", ctx.Err())
		}
	}
}

// safeCall calls fn, turning a panic into an error so that one broken actor or hook does
// not skip the rest of the shutdown.
func (g *Group) safeCall(ctx context.Context, what string, fn func(ctx context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			g.logger.Error("panic", "in", what, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn(ctx)
}
