package binding

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/svckit/svckit/schedule"
)

// cronInput is the cron input: an Event per tick of its schedule.
type cronInput struct {
	name    string
	spec    string
	sched   schedule.Schedule
	data    []byte
	loc     *time.Location
	claims  schedule.Claimer
	missed  schedule.Missed
	timeout time.Duration
	obs     *observer
}

func newCron(ctx context.Context, name string, c *CronConfig, d *Deps, obs *observer) (*cronInput, error) {
	if c.Schedule == "" {
		return nil, required("schedule")
	}
	sched, err := parseSchedule(c.Schedule)
	if err != nil {
		return nil, fieldErr("schedule", err)
	}
	in := &cronInput{name: name, spec: c.Schedule, sched: sched, data: []byte(c.Data), loc: time.UTC,
		timeout: c.Timeout, obs: obs}
	if c.Location != "" {
		if in.loc, err = time.LoadLocation(c.Location); err != nil {
			return nil, fieldErr("location", err)
		}
	}
	switch c.Missed {
	case "", "skip":
	case "once":
		in.missed = schedule.RunOnce
	case "all":
		in.missed = schedule.RunAll
	default:
		return nil, invalid("missed", "%q: want skip, once or all", c.Missed)
	}
	if c.Timeout < 0 {
		return nil, invalid("timeout", "must not be negative")
	}
	if c.Bucket != "" && c.Claims != "kv" {
		return nil, invalid("bucket", "only for claims: kv")
	}
	switch c.Claims {
	case "", "local":
		in.claims = &localClaims{last: map[string]time.Time{}}
	case "store":
		if d.Store == nil {
			return nil, invalid("claims", "store: Deps.Store is not set")
		}
		if in.claims, err = schedule.NewSQL(ctx, d.Store); err != nil {
			return nil, fieldErr("claims", err)
		}
	case "kv":
		if d.Bus == nil {
			return nil, invalid("claims", "kv: Deps.Bus is not set")
		}
		bucket := c.Bucket
		if bucket == "" {
			bucket = "svckit_binding_cron"
		}
		kv, err := schedule.KVBucket(ctx, d.Bus.JetStream(), bucket, 0)
		if err != nil {
			return nil, fieldErr("bucket", err)
		}
		in.claims = schedule.NewKV(kv)
	default:
		return nil, invalid("claims", "%q: want local, store or kv", c.Claims)
	}
	return in, nil
}

// Name implements Input.
func (c *cronInput) Name() string { return c.name }

// Run implements Input: it runs a scheduler with one job until ctx ends.
func (c *cronInput) Run(ctx context.Context, h Handler) error {
	s := schedule.New(c.claims, schedule.WithLocation(c.loc), schedule.WithLogger(c.obs.log))
	err := s.AddSchedule(c.name, c.sched, func(ctx context.Context) error {
		tick, ok := schedule.TickFrom(ctx)
		if !ok {
			return errors.New("binding: cron run without a tick")
		}
		if c.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
		e := Event{
			Binding:  c.name,
			ID:       c.name + "-" + strconv.FormatInt(tick.UnixNano(), 10),
			Time:     tick,
			Subject:  c.spec,
			Attempt:  1,
			Metadata: map[string]string{"tick": tick.UTC().Format(time.RFC3339Nano)},
			Data:     c.data,
		}
		return c.obs.handle(ctx, h, e)
	}, schedule.WithMissed(c.missed))
	if err != nil {
		return fmt.Errorf("binding %s: %w", c.name, err)
	}
	return s.Run(ctx)
}

// parseSchedule parses spec with schedule.Parse, except that "@every D" keeps a D
// below a second (robfig/cron rounds it up to one).
func parseSchedule(spec string) (schedule.Schedule, error) {
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || every <= 0 {
			return nil, fmt.Errorf("%q: want @every and a positive duration", spec)
		}
		return schedule.Every(every), nil
	}
	return schedule.Parse(spec)
}

// localClaims is a schedule.Claimer for one replica: every claim succeeds.
type localClaims struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// Claim implements schedule.Claimer.
func (l *localClaims) Claim(_ context.Context, job string, tick time.Time, _ string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.last[job]; ok && !tick.After(last) {
		return false, nil
	}
	l.last[job] = tick
	return true, nil
}

// Finish implements schedule.Claimer.
func (l *localClaims) Finish(context.Context, string, time.Time, error) error { return nil }

// Last implements schedule.Claimer.
func (l *localClaims) Last(_ context.Context, job string) (time.Time, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.last[job]
	return t, ok, nil
}
