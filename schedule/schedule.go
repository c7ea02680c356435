// Package schedule runs jobs on cron schedules across the replicas of a service, each
// tick on exactly one replica.
//
// Every replica runs a [Scheduler] with the same jobs. When a tick is due, each replica
// tries to claim it in a shared [Claimer] under the key (job, tick time); the claim
// succeeds for one of them, which runs the job. Claims live in the service's SQL store
// ([NewSQL], table schedule_runs) or in a NATS KV bucket ([NewKV]). Tick times come from
// the schedule alone, never from a replica's start time, so all replicas compute the same
// keys: cron specs (robfig/cron/v3 syntax, with an optional seconds field), descriptors
// such as @hourly, and intervals ([Every], "@every 10s") aligned to multiples of the
// interval since the Unix epoch.
//
// Ticks that pass while no replica runs, or while a job runs past its next tick, are
// handled by the job's [Missed] policy: skip them, run the latest once, or run them all
// (up to a bound). The claimer remembers the latest claimed tick of each job, so a
// restarted scheduler knows what it missed.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
)

// Claimer records which ticks of which jobs were claimed. Implementations must make Claim
// atomic: for one job and tick, exactly one call reports true.
type Claimer interface {
	// Claim claims tick of job for holder and reports whether this call was the first.
	Claim(ctx context.Context, job string, tick time.Time, holder string) (bool, error)
	// Finish records that the claimed tick of job finished, with err (nil on success).
	Finish(ctx context.Context, job string, tick time.Time, err error) error
	// Last returns the latest claimed tick of job, and false when there is none.
	Last(ctx context.Context, job string) (time.Time, bool, error)
}

// Schedule returns the next tick after t. cron.Schedule is one. Every replica must get
// the same ticks from it.
type Schedule interface {
	Next(t time.Time) time.Time
}

// Every returns a schedule that ticks every d at whole multiples of d since the Unix
// epoch (for d = 10s: at :00, :10, :20, …), the same on every replica.
func Every(d time.Duration) Schedule {
	if d <= 0 {
		panic("schedule: Every needs a positive interval")
	}
	return every(d)
}

type every time.Duration

func (e every) Next(t time.Time) time.Time {
	d := int64(e)
	n := t.UnixNano()
	next := (n/d + 1) * d
	if n < 0 && n%d != 0 {
		next -= d
	}
	return time.Unix(0, next).In(t.Location())
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse parses a cron spec: five fields (minute hour day-of-month month day-of-week), six
// with a leading seconds field, or a descriptor (@hourly, @daily, @every 5m, …). An
// @every interval is aligned like Every. Specs may start with TZ=Zone.
func Parse(spec string) (Schedule, error) {
	// robfig/cron rounds @every to whole seconds, at least one; parse it here so that
	// sub-second and fractional intervals mean what they say.
	if rest, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("schedule: %q: %w", spec, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("schedule: %q: the interval must be positive", spec)
		}
		return Every(d), nil
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule: %q: %w", spec, err)
	}
	if cd, ok := s.(cron.ConstantDelaySchedule); ok {
		return Every(cd.Delay), nil
	}
	return s, nil
}

// Missed says what a job does with ticks that are late: due longer ago than the job's
// tolerance, because no replica ran or the job's previous run took too long.
type Missed int

const (
	// Skip drops late ticks.
	Skip Missed = iota
	// RunOnce runs the latest of a series of late ticks, once.
	RunOnce
	// RunAll runs every late tick, oldest first, but at most the job's catch-up bound
	// (default 100); older ones are dropped.
	RunAll
)

// JobOption configures a job.
type JobOption func(*job)

// WithMissed sets the job's policy for late ticks; default Skip.
func WithMissed(m Missed) JobOption { return func(j *job) { j.missed = m } }

// WithMaxCatchUp bounds how many late ticks RunAll runs; default 100.
func WithMaxCatchUp(n int) JobOption { return func(j *job) { j.maxCatchUp = n } }

// WithTolerance sets how late a tick may start and still count as on time; default half
// the time to the following tick, at most a minute.
func WithTolerance(d time.Duration) JobOption { return func(j *job) { j.tolerance = d } }

// WithTimeout bounds each run of the job; default none.
func WithTimeout(d time.Duration) JobOption { return func(j *job) { j.timeout = d } }

type job struct {
	name       string
	sched      Schedule
	fn         func(ctx context.Context) error
	missed     Missed
	maxCatchUp int
	tolerance  time.Duration
	timeout    time.Duration
}

// tol returns how late tick may run and still be on time.
func (j *job) tol(tick time.Time) time.Duration {
	if j.tolerance > 0 {
		return j.tolerance
	}
	next := j.sched.Next(tick)
	if next.IsZero() {
		return time.Minute
	}
	return min(next.Sub(tick)/2, time.Minute)
}

// Option configures a Scheduler.
type Option func(*Scheduler)

// WithHolder sets the id recorded with this replica's claims; default random.
func WithHolder(id string) Option { return func(s *Scheduler) { s.holder = id } }

// WithLogger logs runs that fail and claimer errors; default nothing.
func WithLogger(l *slog.Logger) Option { return func(s *Scheduler) { s.log = l } }

// WithLocation sets the time zone cron specs are read in; default time.Local. Every
// replica must use the same.
func WithLocation(loc *time.Location) Option { return func(s *Scheduler) { s.loc = loc } }

// Scheduler runs jobs on their schedules, claiming each tick in a Claimer.
type Scheduler struct {
	c      Claimer
	holder string
	log    *slog.Logger
	loc    *time.Location
	now    func() time.Time

	mu      sync.Mutex
	jobs    []*job
	running bool
}

// New returns a Scheduler that claims ticks in c.
func New(c Claimer, opts ...Option) *Scheduler {
	s := &Scheduler{c: c, log: slog.New(slog.DiscardHandler), loc: time.Local, now: time.Now}
	for _, fn := range opts {
		fn(s)
	}
	if s.holder == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s.holder = hex.EncodeToString(b[:])
	}
	return s
}

var validName = regexp.MustCompile(`^[-_a-zA-Z0-9]+$`)

// Add adds the job name, run by fn on the cron spec (see Parse). Names are made of
// letters, digits, - and _, and are unique. Add jobs before Run.
func (s *Scheduler) Add(name, spec string, fn func(ctx context.Context) error, opts ...JobOption) error {
	sched, err := Parse(spec)
	if err != nil {
		return err
	}
	return s.AddSchedule(name, sched, fn, opts...)
}

// AddSchedule adds the job name, run by fn on sched.
func (s *Scheduler) AddSchedule(name string, sched Schedule, fn func(ctx context.Context) error, opts ...JobOption) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("schedule: job name %q: use letters, digits, - and _", name)
	}
	j := &job{name: name, sched: sched, fn: fn, maxCatchUp: 100}
	for _, o := range opts {
		o(j)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("schedule: Add after Run")
	}
	for _, o := range s.jobs {
		if o.name == name {
			return fmt.Errorf("schedule: job %q exists", name)
		}
	}
	s.jobs = append(s.jobs, j)
	return nil
}

// Run runs the jobs until ctx ends, then waits for runs in progress to return. Runs get
// a context that is canceled when ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("schedule: Run called twice")
	}
	s.running = true
	jobs := s.jobs
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { s.loop(ctx, j) })
	}
	wg.Wait()
	return nil
}

// maxLate bounds how many late ticks are looked at; after a longer outage the oldest are
// dropped without being counted.
const maxLate = 1_000_000

// loop runs job j's ticks until ctx ends.
func (s *Scheduler) loop(ctx context.Context, j *job) {
	cursor := s.now().In(s.loc)
	if j.missed != Skip {
		if last, ok, err := s.c.Last(ctx, j.name); err != nil {
			s.log.Warn("schedule: cannot read the last tick", "job", j.name, "err", err)
		} else if ok && last.Before(cursor) {
			cursor = last.In(s.loc)
		}
	}
	for {
		next := j.sched.Next(cursor)
		if next.IsZero() {
			return
		}
		if err := sleepUntil(ctx, next); err != nil {
			return
		}
		run, last := j.due(next, s.now())
		for _, tick := range run {
			if ctx.Err() != nil {
				return
			}
			s.fire(ctx, j, tick)
		}
		cursor = last
	}
}

// due returns the ticks to run, given that tick is due at now, and the last tick
// considered. An on-time tick runs; a series of late ones is handled by the policy.
func (j *job) due(tick, now time.Time) (run []time.Time, last time.Time) {
	if now.Sub(tick) <= j.tol(tick) {
		return []time.Time{tick}, tick
	}
	// tick is late: find the series of late ticks that starts with it.
	late := []time.Time{tick}
	keep := 1
	if j.missed == RunAll {
		keep = max(j.maxCatchUp, 1)
	}
	last = tick
	for n := 1; n < maxLate; n++ {
		t := j.sched.Next(last)
		if t.IsZero() || t.After(now) || now.Sub(t) <= j.tol(t) {
			break
		}
		last = t
		late = append(late, t)
		if len(late) > keep {
			late = late[1:]
		}
	}
	switch j.missed {
	case RunOnce:
		return late[len(late)-1:], last
	case RunAll:
		return late, last
	}
	return nil, last
}

// fire claims tick of j and runs j if the claim is this replica's.
func (s *Scheduler) fire(ctx context.Context, j *job, tick time.Time) {
	ok, err := s.c.Claim(ctx, j.name, tick, s.holder)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("schedule: cannot claim a tick; skipped", "job", j.name, "tick", tick, "err", err)
		}
		return
	}
	if !ok {
		return
	}
	rctx, cancel := context.WithValue(ctx, tickCtxKey{}, tick), context.CancelFunc(func() {})
	if j.timeout > 0 {
		rctx, cancel = context.WithTimeout(rctx, j.timeout)
	}
	err = runSafely(rctx, j.fn)
	cancel()
	if err != nil {
		s.log.Error("schedule: job failed", "job", j.name, "tick", tick, "err", err)
	}
	if ferr := s.c.Finish(context.WithoutCancel(ctx), j.name, tick, err); ferr != nil {
		s.log.Warn("schedule: cannot record a finished run", "job", j.name, "tick", tick, "err", ferr)
	}
}

type tickCtxKey struct{}

// TickFrom returns the tick that the run of a job with context ctx belongs to.
func TickFrom(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(tickCtxKey{}).(time.Time)
	return t, ok
}

func runSafely(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("schedule: job panicked: %v", r)
		}
	}()
	return fn(ctx)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
