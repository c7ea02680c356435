package discovery

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Lease is what a backend does to keep one instance registered; [Keep] calls it.
type Lease interface {
	// Register writes the instance with its time to live, anew: at the start, and again
	// after a Refresh failed (the entry may have expired during an outage).
	Register(ctx context.Context) error
	// Refresh extends the time to live of the entry Register wrote.
	Refresh(ctx context.Context) error
	// Deregister removes the entry.
	Deregister(ctx context.Context) error
}

// KeepOptions configures [Keep]. The zero value is usable with a TTL.
type KeepOptions struct {
	// TTL is the registration's time to live; default DefaultTTL.
	TTL time.Duration
	// Interval is the time between heartbeats; default TTL/3.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to register again after a
	// failure; the wait doubles from MinBackoff (default 100ms) up to MaxBackoff (default
	// Interval), with full jitter. Attempts never stop until Deregister.
	MinBackoff, MaxBackoff time.Duration
	// Logger gets a warning for each failed heartbeat or attempt and an info line when the
	// instance is registered again; default: no logging.
	Logger *slog.Logger
	// OnRegister, if set, is called after each successful Register, with the number of the
	// attempt (1 for the first registration). Tests use it to watch re-registration.
	OnRegister func(n int)
}

func (o KeepOptions) withDefaults() KeepOptions {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Interval <= 0 {
		o.Interval = o.TTL / 3
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = o.Interval
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Keep registers inst through lease and starts its heartbeat: a Refresh every Interval and,
// after a failed Refresh, Register again with exponential backoff and jitter, for as long
// as it takes. It returns when the first Register succeeded, or with its error. The
// heartbeat does not end with ctx; it ends with the Registration's Deregister. Backends
// build their Register on it.
func Keep(ctx context.Context, inst Instance, lease Lease, opts KeepOptions) (Registration, error) {
	opts = opts.withDefaults()
	if err := lease.Register(ctx); err != nil {
		return nil, err
	}
	if opts.OnRegister != nil {
		opts.OnRegister(1)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &keeper{inst: inst, lease: lease, opts: opts, cancel: cancel, done: make(chan struct{})}
	go k.loop(loopCtx)
	return k, nil
}

type keeper struct {
	inst   Instance
	lease  Lease
	opts   KeepOptions
	cancel context.CancelFunc
	done   chan struct{}

	once sync.Once
	err  error
}

func (k *keeper) Instance() Instance { return k.inst }

func (k *keeper) Deregister(ctx context.Context) error {
	k.once.Do(func() {
		k.cancel()
		<-k.done
		k.err = k.lease.Deregister(ctx)
	})
	return k.err
}

func (k *keeper) loop(ctx context.Context) {
	defer close(k.done)
	log := k.opts.Logger.With(slog.String("service", k.inst.Service), slog.String("instance", k.inst.ID))
	t := time.NewTimer(k.opts.Interval)
	defer t.Stop()
	registrations := 1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := k.call(ctx, k.lease.Refresh)
		if err == nil {
			t.Reset(k.opts.Interval)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		log.WarnContext(ctx, "discovery: heartbeat failed; registering again", slog.String("error", err.Error()))
		for attempt := 0; ; attempt++ {
			if !sleep(ctx, backoff(k.opts.MinBackoff, k.opts.MaxBackoff, attempt)) {
				return
			}
			err := k.call(ctx, k.lease.Register)
			if err == nil {
				registrations++
				log.InfoContext(ctx, "discovery: registered again", slog.Int("attempts", attempt+1))
				if k.opts.OnRegister != nil {
					k.opts.OnRegister(registrations)
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.WarnContext(ctx, "discovery: registering failed", slog.String("error", err.Error()), slog.Int("attempt", attempt+1))
		}
		t.Reset(k.opts.Interval)
	}
}

// call runs op under a deadline of one interval, so a hanging backend cannot stall the
// heartbeat for longer than the time to live.
func (k *keeper) call(ctx context.Context, op func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, max(k.opts.Interval, time.Second))
	defer cancel()
	return op(ctx)
}

// backoff returns a random wait in [min, d] where d doubles with each attempt from min up
// to max ("full jitter" above the minimum).
func backoff(minD, maxD time.Duration, attempt int) time.Duration {
	d := minD
	for i := 0; i < attempt && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	if d <= minD {
		return minD
	}
	return minD + rand.N(d-minD+1)
}

// sleep waits d or until ctx ends; it reports whether the wait was complete.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Backoff returns the wait before attempt number attempt (0 for the first retry): a random
// duration between minD and a cap that doubles from minD with each attempt up to maxD. The
// backends use it to reconnect watches.
func Backoff(minD, maxD time.Duration, attempt int) time.Duration {
	return backoff(minD, maxD, attempt)
}
