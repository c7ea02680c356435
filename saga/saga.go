// Package saga runs sagas: sequences of steps, each with an action and a compensation,
// whose progress lives in the service's own store, so that a saga survives a crash of the
// process that runs it.
//
// A saga is defined in code with [Define] and run by an [Orchestrator]. The orchestrator
// checkpoints the saga's state (a JSON-encoded Go value) after every step; a guard, and a
// step marked [Step.NoCheckpoint] whose action may run again, go with the next
// checkpoint (fewer transactions per saga). When a step fails for good, the completed
// steps are compensated in reverse order, and every compensation is retried, with
// backoff, until it succeeds. When the process restarts, [Orchestrator.Resume] picks up
// every saga that had not ended, from its last checkpoint.
//
// Each step is recorded once per saga and phase in saga_steps, under a unique key
// (saga id, step, phase). A step's local effects made with [Step.ActionTx] or
// [Step.CompensateTx] commit in the same transaction as that record, so they happen
// exactly once even if the process dies at any point. Effects elsewhere (a call to a
// payment service) happen at least once; the step's context carries an idempotency key
// ([Key]) that stays the same across retries and restarts, so the remote side can
// deduplicate them.
package saga

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or updates the saga tables (saga_instances, saga_steps) in st, as the
// migration set "saga". [New] calls it.
func Migrate(ctx context.Context, st *store.Store) error {
	return st.Migrate(ctx, migrations, store.WithSet("saga"), store.WithDir("migrations"))
}

// State is where a saga is in its life.
type State string

// The states of a saga. Completed, Compensated and Failed are terminal.
const (
	Running      State = "running"      // actions are being run
	Compensating State = "compensating" // a step failed; compensations are being run
	Completed    State = "completed"    // every action succeeded
	Compensated  State = "compensated"  // a step failed and every completed step was compensated
	Failed       State = "failed"       // the saga cannot run: its state does not decode
)

// Terminal reports whether a saga in state s has ended.
func (s State) Terminal() bool { return s == Completed || s == Compensated || s == Failed }

// Retry says how often and how fast a step's action is retried. Compensations use the
// same backoff but are retried until they succeed.
//
// Which failures are retried: a transient one ([Transient]: the peer is unavailable or
// overloaded, or, for an [Step.Idempotent] step, timed out) is retried until the step's
// [Step.Budget] is spent; any other failure is retried only while Attempts allows, and a
// [Permanent] one never.
type Retry struct {
	// Attempts, when set, caps the number of times the action is tried, whatever the
	// error (a transient one also within the budget); 0 means no cap for transient
	// failures and one try for the others. 1 means once.
	Attempts int
	// Initial is the pause after the first failure; default 10ms.
	Initial time.Duration
	// Max caps the pause, which doubles after each failure; default 5s.
	Max time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.Initial <= 0 {
		r.Initial = 10 * time.Millisecond
	}
	if r.Max <= 0 {
		r.Max = 5 * time.Second
	}
	if r.Max < r.Initial {
		r.Max = r.Initial
	}
	return r
}

// pause returns the pause after the n-th failure (1-based): Initial·2ⁿ⁻¹ capped at Max,
// with ±20% jitter.
func (r Retry) pause(n int) time.Duration {
	d := r.Initial
	for i := 1; i < n && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// DefaultBudget is how long a step's transient failures are retried when its Budget is 0.
const DefaultBudget = 30 * time.Second

// Transient reports whether err is a failure that waiting may cure, so that a saga step
// that failed with it is retried within its budget instead of compensated: a peer that
// is unavailable (connection refused or reset, no instance ready, shedding load:
// svcerr.Unavailable, which is how transport/grpc and transport/http report them),
// overloaded or rate-limited (svcerr.ResourceExhausted), or a conflict that left nothing
// behind (svcerr.Aborted). A timeout (svcerr.DeadlineExceeded, or the step's own Timeout)
// is transient only when idempotent is true: a call that timed out may have taken
// effect, and only an idempotent one may be made again blindly. An error marked
// [Permanent] is never transient.
func Transient(err error, idempotent bool) bool {
	if err == nil || errors.As(err, new(permanentError)) {
		return false
	}
	switch svcerr.KindOf(err) {
	case svcerr.Unavailable, svcerr.ResourceExhausted, svcerr.Aborted:
		return true
	case svcerr.DeadlineExceeded:
		return idempotent
	}
	return false
}

// retryAfter returns the pause a server asked for in err's retry_after metadata (whole
// seconds, as the transports fill it from Retry-After and gRPC error details), or 0.
func retryAfter(err error) time.Duration {
	var e *svcerr.Error
	if !errors.As(err, &e) || e == nil {
		return 0
	}
	s, convErr := strconv.Atoi(e.Meta["retry_after"])
	if convErr != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// Step is one step of a saga whose state has type S. It has an action and, optionally, a
// compensation that undoes the action. Each comes in two forms: the plain one gets the
// step's context and the state; the Tx form runs inside the transaction that checkpoints
// the step, so its writes to the service's store commit if and only if the step does. Set
// at most one of Action and ActionTx, and at most one of Compensate and CompensateTx.
//
// A step with a compensation and no action is a guard: it does nothing going forward,
// and its compensation runs when a later step fails — the way to undo a call that may
// have taken effect although it failed (its reply was lost), by compensating on a step of
// its own before the call's. A guard followed by another step has no transaction of its
// own: it is recorded in the transaction that records the next step (or the failure that
// compensates it), and a saga resumed before that runs from the guard again.
//
// An action that returns an error leaves no effect behind: a failed ActionTx is rolled
// back, and a failed Action must have done nothing or must complete when it is called
// again with the same [Key]. Changes an action makes to the state are checkpointed with
// the step; a retried action starts from the last checkpointed state. Within one run, a
// step that follows a checkpoint is given the value the checkpoint encoded, not one
// decoded from it again; a saga resumed after a crash or taken over decodes its state
// from the checkpoint. Keep in the state only what JSON encodes and decodes alike.
type Step[S any] struct {
	// Name names the step; it must be unique within the saga.
	Name string
	// Action does the step's work.
	Action func(ctx context.Context, state *S) error
	// ActionTx does the step's work inside the checkpoint transaction.
	ActionTx func(ctx context.Context, tx *sql.Tx, state *S) error
	// Compensate undoes the action. It must be idempotent: it may run more than once.
	Compensate func(ctx context.Context, state *S) error
	// CompensateTx undoes the action inside the checkpoint transaction.
	CompensateTx func(ctx context.Context, tx *sql.Tx, state *S) error
	// Timeout bounds each attempt of the action and of the compensation; 0 means none.
	Timeout time.Duration
	// Retry says how often the action is tried before the saga compensates, and how
	// long it pauses between attempts.
	Retry Retry
	// Budget is how long transient failures of the action (see [Transient]) are retried,
	// counted from the action's first attempt in the process that runs it; when an
	// attempt fails and the next would start after the budget, the saga compensates.
	// 0 means DefaultBudget (30s); a negative budget retries nothing. A saga resumed
	// after a crash or taken over by another replica starts the budget afresh: the time
	// its orchestrator was down says nothing about the peer, and counting it would
	// compensate sagas whose peers are fine. Each resumed run makes at least one attempt.
	Budget time.Duration
	// Idempotent says the action may run again after a timeout: it sends [Key] to a
	// peer that deduplicates on it, or repeating it is harmless. Only then is a timeout
	// (svcerr.DeadlineExceeded, or the step's Timeout) retried within the budget; the
	// timed-out call of a non-idempotent action may have taken effect, and trying again
	// could take it twice, so the saga compensates instead (unless Retry.Attempts asks
	// for more tries).
	Idempotent bool
	// NoCheckpoint records a plain Action's completion with the saga's next checkpoint
	// instead of in a transaction of its own: one transaction fewer per saga. Until that
	// checkpoint the store has the saga before the step, so a saga resumed after a crash
	// in between runs the step again: set it only on an action that may run again after
	// it succeeded (a call to a peer that deduplicates on [Key] and answers a repeat as
	// it answered the first) and whose changes to the state running it again makes
	// anew. The last step, a step followed by an ActionTx (whose transaction records the
	// step anyway) and a failure (which compensates) are checkpointed as before. Define
	// panics if it is set on an ActionTx or a guard.
	NoCheckpoint bool
}

func (s *Step[S]) budget() time.Duration {
	if s.Budget == 0 {
		return DefaultBudget
	}
	return max(s.Budget, 0)
}

func (s *Step[S]) hasCompensation() bool { return s.Compensate != nil || s.CompensateTx != nil }

// guard reports whether the step has no action, only a compensation.
func (s *Step[S]) guard() bool { return s.Action == nil && s.ActionTx == nil }

// Definition is a named sequence of steps over a state of type S, made by [Define].
type Definition[S any] struct {
	name  string
	steps []Step[S]
}

// Define returns the definition of the saga named name with the given steps, run in
// order. It panics if there are no steps, if a step has two actions, or neither an action
// nor a compensation, or if two steps have the same name: definitions are static, so
// those are programming errors.
func Define[S any](name string, steps ...Step[S]) *Definition[S] {
	if name == "" || len(steps) == 0 {
		panic("saga: Define needs a name and at least one step")
	}
	seen := map[string]bool{}
	for i, s := range steps {
		if s.Action != nil && s.ActionTx != nil {
			panic(fmt.Sprintf("saga %s: step %d (%s) has both Action and ActionTx", name, i, s.Name))
		}
		if s.Action == nil && s.ActionTx == nil && !s.hasCompensation() {
			panic(fmt.Sprintf("saga %s: step %d (%s) needs an action (Action or ActionTx) or, for a guard, a compensation", name, i, s.Name))
		}
		if s.Compensate != nil && s.CompensateTx != nil {
			panic(fmt.Sprintf("saga %s: step %d (%s) has both Compensate and CompensateTx", name, i, s.Name))
		}
		if s.NoCheckpoint && s.Action == nil {
			panic(fmt.Sprintf("saga %s: step %d (%s): NoCheckpoint needs a plain Action", name, i, s.Name))
		}
		if s.Name == "" || seen[s.Name] {
			panic(fmt.Sprintf("saga %s: step %d has an empty or repeated name %q", name, i, s.Name))
		}
		seen[s.Name] = true
	}
	return &Definition[S]{name: name, steps: append([]Step[S](nil), steps...)}
}

// Name returns the saga's name.
func (d *Definition[S]) Name() string { return d.name }

// Steps returns the names of the saga's steps in order.
func (d *Definition[S]) Steps() []string {
	out := make([]string, len(d.steps))
	for i, s := range d.steps {
		out[i] = s.Name
	}
	return out
}

// Runner is a saga definition as an Orchestrator holds it; *Definition[S] is one.
type Runner interface {
	// Name returns the saga's name.
	Name() string
	// Steps returns the names of the steps.
	Steps() []string
	execute(ctx context.Context, o *Orchestrator, in *instance)
}

var _ Runner = (*Definition[struct{}])(nil)

// StepInfo describes the step whose action or compensation runs; its context carries it.
type StepInfo struct {
	SagaID  string
	Saga    string // the saga's name
	Step    int    // 0-based index
	Name    string // the step's name
	Phase   string // "action" or "compensate"
	Attempt int    // 1-based, counted within this process
}

// Key returns the step's idempotency key: the saga id and step name, joined by "/". It is
// the same for every attempt, in every process, so a remote call made with it (for
// example as an Idempotency-Key header) takes effect once.
func (i StepInfo) Key() string { return i.SagaID + "/" + i.Name }

type stepInfoKey struct{}

// Info returns the StepInfo of the step that ctx belongs to, and false outside a step.
func Info(ctx context.Context) (StepInfo, bool) {
	i, ok := ctx.Value(stepInfoKey{}).(*StepInfo)
	if !ok {
		return StepInfo{}, false
	}
	return *i, true
}

// Key returns the idempotency key of the step that ctx belongs to (see [StepInfo.Key]),
// or "" outside a step. Compensations get the key of the action with "/compensate" added.
func Key(ctx context.Context) string {
	i, ok := Info(ctx)
	if !ok {
		return ""
	}
	if i.Phase == phaseCompensate {
		return i.Key() + "/compensate"
	}
	return i.Key()
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying will not fix: the saga compensates at once
// instead of trying the action again.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// Errors returned by the Orchestrator.
var (
	// ErrNotFound is returned by Status for an unknown saga id.
	ErrNotFound = errors.New("saga: not found")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("saga: orchestrator closed")
	// ErrOwnerConflict is returned by Start and Resume of an orchestrator whose owner
	// (see WithOwner) another orchestrator on the same store took over: two replicas run
	// with the same owner. The orchestrator has stopped running sagas.
	ErrOwnerConflict = errors.New("saga: another orchestrator took this owner over")
)

const (
	phaseAction     = "action"
	phaseCompensate = "compensate"
	phaseFailed     = "failed"
	phaseInvalid    = "invalid"
)

// instance is a saga's row as the running orchestrator sees it.
type instance struct {
	id     string
	name   string
	state  State
	step   int
	data   []byte
	errMsg string
	// first is the failed first attempt of the first action, made by Start; the run
	// takes it as its own first attempt.
	first *attempt
	// passed are the guards (steps without an action) and the NoCheckpoint steps the run
	// has gone past since the last checkpoint: the next checkpoint records them, and until
	// then the store has the saga at the first of them.
	passed []passedGuard
	// decoded is data decoded (a *S), when the run has it: the state value the last
	// checkpoint encoded, which no action has had since. The next step takes it instead
	// of decoding data again; nil means decode data.
	decoded any
}

// passedGuard is a guard or NoCheckpoint step the run went past, not yet recorded.
type passedGuard struct {
	step int
	name string
}

// stepRecord is one row of saga_steps that a checkpoint writes.
type stepRecord struct {
	step        int
	name, phase string
	errMsg      string
}

// attempt is a failed attempt of an action: its error and when the action was begun.
type attempt struct {
	err   error
	begun time.Time
}

// Option configures an Orchestrator.
type Option func(*Orchestrator)

// WithOwner names this orchestrator for a store shared by several replicas, and sets how
// long its claim on the sagas it runs lasts without renewal (default 30s). Replicas with
// different owners run disjoint sets of sagas; a replica resumes another's sagas only when
// that one's claim has lapsed, and a replica that lost its claim stops at its next
// checkpoint. Give each replica its own owner, stable across its restarts (the service
// name and instance id): a restarted process with the same owner resumes its sagas at
// once. The default owner, "local", suits one replica per store.
//
// An owner is held by one orchestrator at a time: New takes it over (table saga_owners),
// and every claim and checkpoint is made under it, so when a second orchestrator with the
// same owner starts on the store (two replicas left on the default owner), the earlier
// one cannot checkpoint any more. It stops running sagas, and its Start and Resume fail
// with ErrOwnerConflict; the later one runs the sagas, a step that was in flight in the
// earlier one again (at least once, with the same Key).
func WithOwner(owner string, lease time.Duration) Option {
	return func(o *Orchestrator) {
		o.owner = owner
		if lease > 0 {
			o.lease = lease
		}
	}
}

// WithConcurrency bounds how many sagas run at once; default 256.
func WithConcurrency(n int) Option {
	return func(o *Orchestrator) {
		if n > 0 {
			o.sem = make(chan struct{}, n)
		}
	}
}

// WithLogger logs step failures and compensations to l; default nothing.
func WithLogger(l *slog.Logger) Option { return func(o *Orchestrator) { o.log = l } }

// WithResumeInterval makes the orchestrator call Resume every d, to take over sagas whose
// owner's claim lapsed; default 0, Resume runs only when called.
func WithResumeInterval(d time.Duration) Option { return func(o *Orchestrator) { o.resumeEvery = d } }

// WithCompensationBackoff caps the pause between attempts of a compensation; default 5s.
func WithCompensationBackoff(max time.Duration) Option {
	return func(o *Orchestrator) { o.compMax = max }
}

// Orchestrator runs sagas and keeps their state in a store.
type Orchestrator struct {
	st          *store.Store
	owner       string
	instance    string // this orchestrator's hold on owner in saga_owners
	lease       time.Duration
	sem         chan struct{}
	log         *slog.Logger
	resumeEvery time.Duration
	compMax     time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	work   chan func() // sagas handed to idle workers

	insertInstance, insertStep, updateInstance *sql.Stmt
	selectState, selectHeld                    *sql.Stmt
	// The text of insertInstance, insertStep and updateInstance, rebound: on SQLite the
	// writer keeps them prepared by their text (see exec).
	insertInstanceSQL, insertStepSQL, updateInstanceSQL string
	stepsSQL                                            [9]string // stepsSQL[n] inserts n step records (2 ≤ n ≤ 8: a checkpoint after guards and NoCheckpoint steps writes several)

	stopOnce sync.Once

	mu       sync.Mutex
	closed   bool
	conflict error // ErrOwnerConflict, wrapped, once the owner was taken over
	defs     map[string]Runner
	running  map[string]*run
}

// insertInstanceSQL returns the statement that records a new saga; its arguments are the
// id, name, status, step, state, owner, lease_until, created_at and updated_at. On SQLite
// it also checks the fence (two more arguments: the owner and the instance) and inserts
// nothing when this orchestrator no longer holds its owner; on PostgreSQL, whose
// parameter types an INSERT … SELECT would have to spell out, Start asks selectHeld first.
func insertInstanceSQL(d store.Dialect) string {
	const cols = `INSERT INTO saga_instances (id, name, status, step, state, error, owner, lease_until, created_at, updated_at) `
	if d == store.SQLite {
		return cols + `SELECT ?, ?, ?, ?, ?, '', ?, ?, ?, ? WHERE ` + fence
	}
	return cols + `VALUES (?, ?, ?, ?, ?, '', ?, ?, ?, ?)`
}

// fence is the SQL condition that this orchestrator still holds its owner; its arguments
// are the owner and the instance.
const fence = `EXISTS (SELECT 1 FROM saga_owners WHERE owner = ? AND instance = ?)`

// run is a saga running in this process.
type run struct {
	done chan struct{}
	in   *instance // final once done is closed
}

// New returns an Orchestrator that keeps sagas in st, migrating st's saga tables. It runs
// nothing until sagas are started or resumed; call Close to stop it.
func New(ctx context.Context, st *store.Store, opts ...Option) (*Orchestrator, error) {
	if err := Migrate(ctx, st); err != nil {
		return nil, err
	}
	o := &Orchestrator{
		st: st, owner: "local", lease: 30 * time.Second, sem: make(chan struct{}, 256),
		log: slog.New(slog.DiscardHandler), compMax: 5 * time.Second,
		defs: map[string]Runner{}, running: map[string]*run{}, work: make(chan func()),
	}
	for _, fn := range opts {
		fn(o)
	}
	for n := 2; n < len(o.stepsSQL); n++ {
		o.stepsSQL[n] = st.Rebind(stepsSQL(n))
	}
	o.insertInstanceSQL = st.Rebind(insertInstanceSQL(st.Dialect()))
	o.insertStepSQL = st.Rebind(stepsSQL(1))
	o.updateInstanceSQL = st.Rebind(`UPDATE saga_instances
		SET status = ?, step = ?, state = ?, error = ?, lease_until = ?, updated_at = ?
		WHERE id = ? AND owner = ? AND ` + fence)
	// Prepared once: parsing SQL costs more than running these statements.
	for _, p := range []struct {
		stmt **sql.Stmt
		db   *sql.DB
		sql  string
	}{
		{&o.insertInstance, st.DB(), o.insertInstanceSQL},
		{&o.insertStep, st.DB(), o.insertStepSQL},
		{&o.updateInstance, st.DB(), o.updateInstanceSQL},
		{&o.selectState, st.ReadDB(), st.Rebind(`SELECT status FROM saga_instances WHERE id = ?`)},
		// In the transaction that records a new saga, on the writer.
		{&o.selectHeld, st.DB(), st.Rebind(`SELECT 1 FROM saga_owners WHERE owner = ? AND instance = ?`)},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			o.closeStmts()
			return nil, fmt.Errorf("saga: prepare: %w", err)
		}
		*p.stmt = stmt
	}
	if err := o.holdOwner(ctx); err != nil {
		o.closeStmts()
		return nil, err
	}
	o.ctx, o.cancel = context.WithCancel(context.WithoutCancel(ctx))
	o.wg.Go(o.background)
	return o, nil
}

// holdOwner takes the owner over for this orchestrator: from now on, claims and
// checkpoints of an earlier orchestrator with the same owner fail.
func (o *Orchestrator) holdOwner(ctx context.Context) error {
	o.instance = newID()
	var prev string
	var seen int64
	err := o.st.DB().QueryRowContext(ctx, o.st.Rebind(`SELECT instance, seen FROM saga_owners WHERE owner = ?`), o.owner).Scan(&prev, &seen)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("saga: owner %s: %w", o.owner, err)
	}
	now := time.Now().UnixNano()
	if _, err := o.st.DB().ExecContext(ctx, o.st.Rebind(`INSERT INTO saga_owners (owner, instance, since, seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (owner) DO UPDATE SET instance = excluded.instance, since = excluded.since, seen = excluded.seen`),
		o.owner, o.instance, now, now); err != nil {
		return fmt.Errorf("saga: owner %s: %w", o.owner, err)
	}
	if seen > 0 && now-seen < int64(o.lease) {
		o.log.Warn("saga: took the owner over from an orchestrator that was alive moments ago; if it still runs "+
			"(a second replica with the same owner), it stops with ErrOwnerConflict: give each replica its own owner (saga.WithOwner)",
			"owner", o.owner, "last_seen", time.Duration(now-seen).Round(time.Millisecond))
	}
	return nil
}

// ownerLost stops the orchestrator after another one took its owner over.
func (o *Orchestrator) ownerLost() {
	o.mu.Lock()
	first := o.conflict == nil
	if first {
		o.conflict = fmt.Errorf("%w: owner %q is held by an orchestrator started later on the same store; "+
			"give each replica its own owner (saga.WithOwner)", ErrOwnerConflict, o.owner)
		o.closed = true
	}
	o.mu.Unlock()
	if first {
		o.log.Error("saga: another orchestrator with the same owner started on this store; this one stops running sagas",
			"owner", o.owner)
		o.cancel()
	}
}

// checkOwner calls ownerLost if another orchestrator holds the owner now, and reports
// whether one does.
func (o *Orchestrator) checkOwner(ctx context.Context) bool {
	var inst string
	err := o.st.DB().QueryRowContext(ctx, o.st.Rebind(`SELECT instance FROM saga_owners WHERE owner = ?`), o.owner).Scan(&inst)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false // unknown; the next heartbeat asks again
	}
	if inst != o.instance {
		o.ownerLost()
		return true
	}
	return false
}

// err returns the error Start and Resume return: the owner conflict, if any.
func (o *Orchestrator) err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.conflict
}

// Register makes definitions known to the orchestrator, so that Resume can run their
// sagas. Register them before Resume. A second definition with the name of a registered
// one, other than the same one, is an error.
func (o *Orchestrator) Register(defs ...Runner) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, d := range defs {
		if prev, ok := o.defs[d.Name()]; ok && prev != d {
			return fmt.Errorf("saga: a saga named %q is registered already", d.Name())
		}
		o.defs[d.Name()] = d
	}
	return nil
}

// StartOption configures Start.
type StartOption func(*startOptions)

type startOptions struct{ id string }

// WithID sets the saga's id instead of a random one. Starting a saga with an id that
// exists already does nothing, which makes Start idempotent.
func WithID(id string) StartOption { return func(o *startOptions) { o.id = id } }

// Start records a new saga of definition d with the initial state, and runs it in the
// background. It returns the saga's id once the saga is recorded: from then on the saga
// runs to a terminal state, here or, after a crash, in the orchestrator that resumes it.
// Use Wait to wait for it. d is registered if it is not yet.
//
// When the first step is an ActionTx and fewer sagas than the concurrency limit run,
// Start makes the first attempt of that step in the transaction that records the saga,
// so the saga is recorded as the step leaves it: one transaction instead of two. Start
// then returns after that attempt. If the attempt fails, the saga is recorded at its
// start, and its run counts the failed attempt as its first.
//
// Likewise, while a saga runs, an ActionTx step that follows a plain Action makes its
// first attempt in the transaction that records that action.
func Start[S any](ctx context.Context, o *Orchestrator, d *Definition[S], state S, opts ...StartOption) (string, error) {
	var so startOptions
	for _, fn := range opts {
		fn(&so)
	}
	if err := o.Register(d); err != nil {
		return "", err
	}
	o.mu.Lock()
	closed, conflict := o.closed, o.conflict
	o.mu.Unlock()
	if conflict != nil {
		return "", conflict
	}
	if closed {
		return "", ErrClosed
	}
	if so.id == "" {
		so.id = newID()
	}
	data, err := json.Marshal(state)
	if err != nil {
		return "", fmt.Errorf("saga %s: encode state: %w", d.name, err)
	}
	in := &instance{id: so.id, name: d.name, state: Running, data: data}
	if d.steps[0].ActionTx != nil {
		// Run the first step in the transaction that records the saga, when a slot is
		// free: one transaction instead of two.
		select {
		case o.sem <- struct{}{}:
			err := func() error {
				defer func() { <-o.sem }()
				return d.startWithFirstStep(ctx, o, in)
			}()
			if err != errNotFolded {
				return d.started(o, in, err)
			}
		default:
		}
	}
	return d.started(o, in, o.record(ctx, in))
}

// started finishes Start once the transaction that records in has ended with err.
func (d *Definition[S]) started(o *Orchestrator, in *instance, err error) (string, error) {
	if errors.Is(err, errOwnerTaken) {
		o.ownerLost()
		return "", o.err()
	}
	if err != nil {
		if o.st.Dialect().IsUniqueViolation(err) {
			return in.id, nil
		}
		return "", fmt.Errorf("saga %s: start: %w", d.name, err)
	}
	if !o.launch(d, in) {
		return in.id, ErrClosed
	}
	return in.id, nil
}

// record records the new saga in, in its own transaction.
func (o *Orchestrator) record(ctx context.Context, in *instance) error {
	return o.st.InTx(ctx, func(tx *sql.Tx) error { return o.insert(ctx, tx, in, time.Now().UnixNano()) })
}

// insert writes the row of the new saga in, as in holds it, within tx. It fails with
// errOwnerTaken when another orchestrator holds this one's owner.
func (o *Orchestrator) insert(ctx context.Context, tx *sql.Tx, in *instance, now int64) error {
	ctx = o.stmtCtx(ctx)
	args := make([]any, 0, 11) // SQLite's statement takes two more, below
	args = append(args, in.id, in.name, string(in.state), in.step, string(in.data), o.owner, now+int64(o.lease), now, now)
	if o.st.Dialect() != store.SQLite {
		var held int
		err := tx.StmtContext(ctx, o.selectHeld).QueryRowContext(ctx, o.owner, o.instance).Scan(&held)
		if errors.Is(err, sql.ErrNoRows) {
			return errOwnerTaken
		}
		if err != nil {
			return err
		}
		_, err = o.exec(ctx, tx, o.insertInstance, o.insertInstanceSQL, args...)
		return err
	}
	res, err := o.exec(ctx, tx, o.insertInstance, o.insertInstanceSQL, append(args, o.owner, o.instance)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errOwnerTaken
	}
	return nil
}

// errNotFolded says that startWithFirstStep recorded nothing and Start records the saga
// by itself.
var errNotFolded = errors.New("saga: first step not folded into the start")

// startWithFirstStep runs the first attempt of in's first step, an ActionTx, in the
// transaction that records in, and records in as that step leaves it. When the action
// fails, the transaction is rolled back, in is recorded by itself, and the failed attempt
// is handed to the run (in.first), which goes on as if it had made it; the error is then
// the recording's. Other failures return errNotFolded, and Start records in by itself.
func (d *Definition[S]) startWithFirstStep(ctx context.Context, o *Orchestrator, in *instance) error {
	step := &d.steps[0]
	next, nextState := 1, Running
	if next == len(d.steps) {
		nextState = Completed
	}
	begun := time.Now()
	sctx, cancel := d.stepCtx(o.ctx, in, 0, phaseAction, 1)
	defer cancel()
	var actErr error
	var data []byte
	var cur *S
	err := o.st.InTx(ctx, func(tx *sql.Tx) error {
		actErr = nil
		// Decoded, not the caller's value: the action gets a state of its own.
		state, err := d.decode(in.data)
		if err != nil {
			return err
		}
		if err := step.ActionTx(sctx, tx, state); err != nil {
			actErr = err
			return err
		}
		if data, err = json.Marshal(state); err != nil {
			return fmt.Errorf("saga %s: encode state: %w", d.name, err)
		}
		cur = state
		now := time.Now().UnixNano()
		after := &instance{id: in.id, name: in.name, state: nextState, step: next, data: data}
		if err := o.insert(ctx, tx, after, now); err != nil {
			return err
		}
		sc := o.stmtCtx(ctx)
		_, err = o.exec(sc, tx, o.insertStep, o.insertStepSQL, in.id, 0, phaseAction, step.Name, "", now)
		return err
	})
	switch {
	case err == nil:
		in.step, in.state, in.data, in.decoded = next, nextState, data, cur
		return nil
	case actErr != nil && err == actErr:
		if err := o.record(ctx, in); err != nil {
			return err
		}
		in.first = &attempt{err: actErr, begun: begun}
		return nil
	case errors.Is(err, errOwnerTaken), o.st.Dialect().IsUniqueViolation(err):
		return err
	}
	return errNotFolded
}

func newID() string {
	var b [16]byte
	_, _ = crand.Read(b[6:])
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return hex.EncodeToString(b[:])
}

// launch runs in in the background, unless it runs here already or o is closed.
func (o *Orchestrator) launch(d Runner, in *instance) bool {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	if _, ok := o.running[in.id]; ok {
		o.mu.Unlock()
		return true
	}
	r := &run{done: make(chan struct{}), in: in}
	o.running[in.id] = r
	job := func() {
		defer func() {
			o.mu.Lock()
			delete(o.running, in.id)
			o.mu.Unlock()
			close(r.done)
		}()
		select {
		case o.sem <- struct{}{}:
		case <-o.ctx.Done():
			return
		}
		defer func() { <-o.sem }()
		d.execute(o.ctx, o, in)
	}
	select {
	case o.work <- job: // an idle worker runs it
	default:
		o.wg.Add(1)
		go o.worker(job)
	}
	o.mu.Unlock()
	return true
}

// workerIdle is how long a worker goroutine waits for another saga before it exits.
const workerIdle = 5 * time.Second

// worker runs job, then the sagas launch hands it, until it has waited workerIdle for
// one or the orchestrator stops. Reused goroutines keep the stack that running a saga
// grew (a new goroutine for each saga grew and copied its stack every time).
func (o *Orchestrator) worker(job func()) {
	defer o.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		job()
		idle.Reset(workerIdle)
		select {
		case job = <-o.work:
		case <-idle.C:
			return
		case <-o.ctx.Done():
			return
		}
	}
}

// Resume claims every saga in the store that has not ended, whose definition is
// registered, and that this orchestrator may run (see WithOwner), and runs those that do
// not run here already, in the background. It returns how many it started. Sagas whose
// definition is not registered are left alone: not claimed, so that a replica that has
// their definition (a newer version, during a rolling upgrade) takes them over.
func (o *Orchestrator) Resume(ctx context.Context) (int, error) {
	if err := o.err(); err != nil {
		return 0, err
	}
	o.mu.Lock()
	names := make([]string, 0, len(o.defs))
	for name := range o.defs {
		names = append(names, name)
	}
	o.mu.Unlock()
	if len(names) == 0 {
		return 0, nil
	}
	slices.Sort(names)
	nameList := "?" + strings.Repeat(", ?", len(names)-1)
	now := time.Now().UnixNano()
	args := []any{o.owner, now + int64(o.lease), o.owner, now}
	for _, n := range names {
		args = append(args, n)
	}
	res, err := o.st.DB().ExecContext(ctx, o.st.Rebind(`UPDATE saga_instances SET owner = ?, lease_until = ?
		WHERE status IN ('running', 'compensating') AND (owner = ? OR lease_until < ?) AND name IN (`+nameList+`) AND `+fence),
		append(args, o.owner, o.instance)...)
	if err != nil {
		return 0, fmt.Errorf("saga: resume: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 && o.checkOwner(ctx) {
		return 0, o.err()
	}
	args = []any{o.owner}
	for _, n := range names {
		args = append(args, n)
	}
	rows, err := o.st.DB().QueryContext(ctx, o.st.Rebind(`SELECT id, name, status, step, state, error FROM saga_instances
		WHERE status IN ('running', 'compensating') AND owner = ? AND name IN (`+nameList+`)`), args...)
	if err != nil {
		return 0, fmt.Errorf("saga: resume: %w", err)
	}
	var ins []*instance
	for rows.Next() {
		in := &instance{}
		var state, data string
		if err := rows.Scan(&in.id, &in.name, &state, &in.step, &data, &in.errMsg); err != nil {
			rows.Close()
			return 0, fmt.Errorf("saga: resume: %w", err)
		}
		in.state, in.data = State(state), []byte(data)
		ins = append(ins, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("saga: resume: %w", err)
	}
	n := 0
	for _, in := range ins {
		o.mu.Lock()
		d, ok := o.defs[in.name]
		_, runs := o.running[in.id]
		o.mu.Unlock()
		if !ok {
			o.log.Warn("saga: cannot resume a saga whose definition is not registered", "saga", in.name, "id", in.id)
			continue
		}
		if runs {
			continue
		}
		if !o.launch(d, in) {
			return n, ErrClosed
		}
		n++
	}
	return n, nil
}

// background renews this orchestrator's claims and resumes sagas periodically.
func (o *Orchestrator) background() {
	renew := time.NewTicker(max(o.lease/3, time.Millisecond))
	defer renew.Stop()
	var resume <-chan time.Time
	if o.resumeEvery > 0 {
		t := time.NewTicker(o.resumeEvery)
		defer t.Stop()
		resume = t.C
	}
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-renew.C:
			if err := o.renew(o.ctx); err != nil && o.ctx.Err() == nil {
				o.log.Warn("saga: renew claims", "err", err)
			}
		case <-resume:
			if _, err := o.Resume(o.ctx); err != nil && o.ctx.Err() == nil {
				o.log.Warn("saga: resume", "err", err)
			}
		}
	}
}

// renew tells the store that this orchestrator is alive and still holds its owner, and
// renews its claims on the sagas that run here — only those: a saga it does not run (its
// definition is not registered, or its run ended early) is left to lapse, for another
// replica to take over.
func (o *Orchestrator) renew(ctx context.Context) error {
	now := time.Now().UnixNano()
	res, err := o.st.DB().ExecContext(ctx, o.st.Rebind(`UPDATE saga_owners SET seen = ? WHERE owner = ? AND instance = ?`),
		now, o.owner, o.instance)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		o.ownerLost()
		return nil
	}
	o.mu.Lock()
	ids := make([]any, 0, len(o.running))
	for id := range o.running {
		ids = append(ids, id)
	}
	o.mu.Unlock()
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := append([]any{now + int64(o.lease), o.owner}, chunk...)
		_, err := o.st.DB().ExecContext(ctx, o.st.Rebind(`UPDATE saga_instances SET lease_until = ?
			WHERE owner = ? AND id IN (?`+strings.Repeat(", ?", len(chunk)-1)+`) AND status IN ('running', 'compensating') AND `+fence),
			append(args, o.owner, o.instance)...)
		if err != nil {
			return err
		}
	}
	return nil
}

// Close stops the orchestrator: running sagas stop at their next checkpoint (the step in
// flight sees its context canceled) and stay in the store to be resumed. Close waits for
// them until ctx ends, then releases its claims on them, so that another replica's
// Resume takes them over at once instead of after the lease.
func (o *Orchestrator) Close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.cancel()
	done := make(chan struct{})
	go func() { o.wg.Wait(); close(done) }()
	select {
	case <-done:
		o.stopOnce.Do(func() {
			o.release(ctx)
			o.closeStmts()
		})
		return nil
	case <-ctx.Done():
		return fmt.Errorf("saga: close: %w", ctx.Err())
	}
}

// release gives up the claims of a closed orchestrator and marks its hold on the owner
// as ended.
func (o *Orchestrator) release(ctx context.Context) {
	if o.err() != nil {
		return
	}
	if _, err := o.st.DB().ExecContext(ctx, o.st.Rebind(`UPDATE saga_instances SET lease_until = 0
		WHERE owner = ? AND status IN ('running', 'compensating') AND `+fence), o.owner, o.owner, o.instance); err != nil {
		o.log.Warn("saga: release claims", "err", err)
	}
	if _, err := o.st.DB().ExecContext(ctx, o.st.Rebind(`UPDATE saga_owners SET seen = 0 WHERE owner = ? AND instance = ?`),
		o.owner, o.instance); err != nil {
		o.log.Warn("saga: release owner", "err", err)
	}
}

func (o *Orchestrator) closeStmts() {
	for _, s := range []*sql.Stmt{o.insertInstance, o.insertStep, o.updateInstance, o.selectState, o.selectHeld} {
		if s != nil {
			s.Close()
		}
	}
}

// StepRecord is one checkpointed step of a saga.
type StepRecord struct {
	Step  int
	Name  string
	Phase string // "action", "compensate", "failed" (the action that failed for good), "invalid" (the state did not decode)
	Error string
	At    time.Time
}

// Status is a saga as the store holds it.
type Status struct {
	ID    string
	Name  string
	State State
	// Step is the index of the next action to run while Running, and of the next
	// compensation to run while Compensating.
	Step int
	// Error is why the saga compensates, or is empty.
	Error string
	// Data is the JSON-encoded state as of the last checkpoint.
	Data      json.RawMessage
	Steps     []StepRecord
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Status returns the saga with id id as the store holds it, or ErrNotFound.
func (o *Orchestrator) Status(ctx context.Context, id string) (Status, error) {
	s := Status{ID: id}
	var state, data string
	var created, updated int64
	err := o.st.ReadDB().QueryRowContext(ctx, o.st.Rebind(`SELECT name, status, step, state, error, created_at, updated_at
		FROM saga_instances WHERE id = ?`), id).Scan(&s.Name, &state, &s.Step, &data, &s.Error, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("saga: status %s: %w", id, err)
	}
	s.State, s.Data = State(state), json.RawMessage(data)
	s.CreatedAt, s.UpdatedAt = time.Unix(0, created), time.Unix(0, updated)
	rows, err := o.st.ReadDB().QueryContext(ctx, o.st.Rebind(`SELECT step, phase, name, error, at FROM saga_steps
		WHERE saga_id = ? ORDER BY at, step`), id)
	if err != nil {
		return s, fmt.Errorf("saga: status %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r StepRecord
		var at int64
		if err := rows.Scan(&r.Step, &r.Phase, &r.Name, &r.Error, &at); err != nil {
			return s, fmt.Errorf("saga: status %s: %w", id, err)
		}
		r.At = time.Unix(0, at)
		s.Steps = append(s.Steps, r)
	}
	return s, rows.Err()
}

// Wait waits until the saga with id id is terminal, or ctx ends, and returns its status.
// For a saga that ran to its end in this process, the status is the one it ended with,
// without its Steps and times; Status has them all.
func (o *Orchestrator) Wait(ctx context.Context, id string) (Status, error) {
	pause := 5 * time.Millisecond
	for {
		o.mu.Lock()
		r := o.running[id]
		o.mu.Unlock()
		if r != nil {
			select {
			case <-r.done:
				if in := r.in; in.state.Terminal() {
					return Status{ID: id, Name: in.name, State: in.state, Step: in.step, Error: in.errMsg, Data: in.data}, nil
				}
			case <-ctx.Done():
				return Status{ID: id}, ctx.Err()
			}
		}
		var state string
		err := o.selectState.QueryRowContext(ctx, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return Status{ID: id}, ErrNotFound
		}
		if err != nil {
			return Status{ID: id}, fmt.Errorf("saga: wait %s: %w", id, err)
		}
		if State(state).Terminal() {
			return o.Status(ctx, id)
		}
		select {
		case <-ctx.Done():
			return Status{ID: id, State: State(state)}, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

var (
	errStepDone   = errors.New("saga: step checkpointed already")
	errLostClaim  = errors.New("saga: claim lost to another owner")
	errOwnerTaken = errors.New("saga: owner taken over")
)

// checkpoint records step (phase) of in and moves in to next/state/data, in tx. The
// records of the guards in went past since its last checkpoint, and before (a step
// recorded in the same transaction), are written with the step's, in one statement. It
// fails with errStepDone if a step was recorded already and errLostClaim if another owner
// holds the saga. The caller clears in.passed once tx commits.
func (o *Orchestrator) checkpoint(ctx context.Context, tx *sql.Tx, in *instance, step int, name, phase, errMsg string,
	next int, state State, data []byte, sagaErr string, before ...stepRecord) error {
	ctx = o.stmtCtx(ctx)
	now := time.Now().UnixNano()
	var buf [4]stepRecord
	recs := buf[:0]
	for _, g := range in.passed {
		recs = append(recs, stepRecord{step: g.step, name: g.name, phase: phaseAction})
	}
	recs = append(append(recs, before...), stepRecord{step: step, name: name, phase: phase, errMsg: errMsg})
	if err := o.insertSteps(ctx, tx, in.id, now, recs); err != nil {
		return err
	}
	res, err := o.exec(ctx, tx, o.updateInstance, o.updateInstanceSQL, string(state), next, string(data), sagaErr,
		now+int64(o.lease), now, in.id, o.owner, o.owner, o.instance)
	if err != nil {
		return fmt.Errorf("saga: checkpoint: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errLostClaim
	}
	return nil
}

// exec runs one of the orchestrator's statements, stmt, whose text is text, in tx: on
// SQLite by its text, which the store's writer keeps prepared (binding stmt to the
// transaction at each call costs more), elsewhere as stmt.
func (o *Orchestrator) exec(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, text string, args ...any) (sql.Result, error) {
	if o.st.Dialect() == store.SQLite {
		return tx.ExecContext(ctx, text, args...)
	}
	return tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
}

// stmtCtx returns the context for the orchestrator's own statements in a transaction.
// On SQLite they are short (rows by their keys, on the single writer, which waits for no
// lock), and a context that can be canceled costs the driver a goroutine for each
// statement, so they run without ctx's cancellation; on PostgreSQL, where one may wait
// for another replica's row lock, they keep it.
func (o *Orchestrator) stmtCtx(ctx context.Context) context.Context {
	if o.st.Dialect() == store.SQLite && ctx.Done() != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// insertSteps writes recs, the step records of saga id, in tx, in one statement. It fails
// with errStepDone if one was recorded already.
func (o *Orchestrator) insertSteps(ctx context.Context, tx *sql.Tx, id string, now int64, recs []stepRecord) error {
	var err error
	if len(recs) == 1 {
		r := recs[0]
		_, err = o.exec(ctx, tx, o.insertStep, o.insertStepSQL, id, r.step, r.phase, r.name, r.errMsg, now)
	} else {
		args := make([]any, 0, 6*len(recs))
		for _, r := range recs {
			args = append(args, id, r.step, r.phase, r.name, r.errMsg, now)
		}
		_, err = tx.ExecContext(ctx, o.insertStepsSQL(len(recs)), args...)
	}
	if err != nil {
		if o.st.Dialect().IsUniqueViolation(err) {
			return errStepDone
		}
		return fmt.Errorf("saga: checkpoint: %w", err)
	}
	return nil
}

// insertStepsSQL returns the statement that inserts n step records, rebound for the
// store's dialect: made once for the usual counts, at each call for more.
func (o *Orchestrator) insertStepsSQL(n int) string {
	if n < len(o.stepsSQL) {
		return o.stepsSQL[n]
	}
	return o.st.Rebind(stepsSQL(n))
}

// stepsSQL returns the INSERT of n rows of saga_steps, with ? placeholders.
func stepsSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO saga_steps (saga_id, step, phase, name, error, at) VALUES (?, ?, ?, ?, ?, ?)`)
	for range n - 1 {
		b.WriteString(`, (?, ?, ?, ?, ?, ?)`)
	}
	return b.String()
}

// reload reads in from the store again after another process moved it on. It fails with
// errLostClaim when another owner holds the saga, or another orchestrator this owner.
func (o *Orchestrator) reload(ctx context.Context, in *instance) error {
	var state, data, owner string
	var holder sql.NullString
	err := o.st.DB().QueryRowContext(ctx, o.st.Rebind(`SELECT i.status, i.step, i.state, i.error, i.owner, w.instance
		FROM saga_instances i LEFT JOIN saga_owners w ON w.owner = i.owner WHERE i.id = ?`),
		in.id).Scan(&state, &in.step, &data, &in.errMsg, &owner, &holder)
	if err != nil {
		return fmt.Errorf("saga: reload %s: %w", in.id, err)
	}
	if owner != o.owner {
		return errLostClaim
	}
	if holder.String != o.instance {
		o.ownerLost()
		return errLostClaim
	}
	in.state, in.data, in.passed, in.decoded = State(state), []byte(data), nil, nil
	return nil
}

// execute runs in to a terminal state, or until ctx ends or the claim is lost.
func (d *Definition[S]) execute(ctx context.Context, o *Orchestrator, in *instance) {
	backoff := Retry{Initial: 10 * time.Millisecond, Max: 5 * time.Second}
	failures := 0
	for !in.state.Terminal() {
		var err error
		switch in.state {
		case Running:
			err = d.runAction(ctx, o, in)
		case Compensating:
			err = d.runCompensation(ctx, o, in)
		default:
			err = fmt.Errorf("saga: unknown state %q", in.state)
		}
		switch {
		case err == nil:
			failures = 0
		case errors.Is(err, errStepDone):
			if err := o.reload(ctx, in); err != nil {
				return
			}
		case errors.Is(err, errLostClaim):
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			taken := o.checkOwner(cctx)
			cancel()
			if !taken {
				o.log.Info("saga: claim lost; another owner runs the saga", "saga", d.name, "id", in.id)
			}
			return
		case ctx.Err() != nil:
			return
		default:
			// The store failed; try again from the last checkpoint.
			failures++
			o.log.Error("saga: store error; retrying", "saga", d.name, "id", in.id, "err", err)
			if sleep(ctx, backoff.pause(failures)) != nil {
				return
			}
			if err := o.reload(ctx, in); errors.Is(err, errLostClaim) {
				return
			}
		}
	}
}

// state returns the state the next attempt of a step of in starts from: the value the
// run kept decoded since the last checkpoint (taken from in: the attempt may change it,
// and a failed one leaves it changed), or else in.data decoded.
func (d *Definition[S]) state(in *instance) (*S, error) {
	if s, ok := in.decoded.(*S); ok && s != nil {
		in.decoded = nil
		return s, nil
	}
	return d.decode(in.data)
}

func (d *Definition[S]) decode(data []byte) (*S, error) {
	s := new(S)
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("saga %s: decode state: %w", d.name, err)
	}
	return s, nil
}

// fail marks in Failed because it cannot be run.
func (d *Definition[S]) fail(ctx context.Context, o *Orchestrator, in *instance, cause error) error {
	err := o.st.InTx(ctx, func(tx *sql.Tx) error {
		return o.checkpoint(ctx, tx, in, in.step, "", phaseInvalid, cause.Error(), in.step, Failed, in.data, cause.Error())
	})
	if err == nil {
		in.state, in.errMsg, in.passed = Failed, cause.Error(), nil
	}
	return err
}

// stepCtx returns the context of one attempt of step i.
func (d *Definition[S]) stepCtx(ctx context.Context, in *instance, i int, phase string, attempt int) (context.Context, context.CancelFunc) {
	ctx = context.WithValue(ctx, stepInfoKey{}, &StepInfo{SagaID: in.id, Saga: d.name, Step: i, Name: d.steps[i].Name, Phase: phase, Attempt: attempt})
	if t := d.steps[i].Timeout; t > 0 {
		return context.WithTimeout(ctx, t)
	}
	return ctx, func() {}
}

// runAction runs the next action of in, with retries, and checkpoints it; when it fails
// for good, it moves in to Compensating.
func (d *Definition[S]) runAction(ctx context.Context, o *Orchestrator, in *instance) error {
	i := in.step
	if i >= len(d.steps) { // cannot happen with checkpoints written by this package
		return d.fail(ctx, o, in, fmt.Errorf("saga %s: step %d out of range", d.name, i))
	}
	step := &d.steps[i]
	retry := step.Retry.withDefaults()
	next, nextState := i+1, Running
	if next == len(d.steps) {
		nextState = Completed
	}
	if step.guard() && next < len(d.steps) {
		// Nothing to do going forward: the next checkpoint records the guard.
		in.passed = append(in.passed, passedGuard{step: i, name: step.Name})
		in.step = next
		return nil
	}
	first := time.Now() // the budget runs from the first attempt in this run
	carried := in.first
	in.first = nil
	if carried != nil {
		first = carried.begun
	}
	for attempt := 1; ; attempt++ {
		state, err := d.state(in)
		if err != nil {
			return d.fail(ctx, o, in, err)
		}
		var data []byte
		moved := false      // in was moved on by checkpointWithNext
		unrecorded := false // a NoCheckpoint step: the next checkpoint records it
		actErr, err := func() (actErr, err error) {
			if attempt == 1 && carried != nil { // made before the run, with the step before
				return carried.err, nil
			}
			sctx, cancel := d.stepCtx(ctx, in, i, phaseAction, attempt)
			defer cancel()
			if step.guard() { // the last step: its checkpoint completes the saga
				return nil, o.st.InTx(sctx, func(tx *sql.Tx) error {
					data = in.data
					return o.checkpoint(sctx, tx, in, i, step.Name, phaseAction, "", next, nextState, data, "")
				})
			}
			if step.ActionTx != nil {
				tries := 0
				err = o.st.InTx(sctx, func(tx *sql.Tx) error {
					actErr = nil
					if tries++; tries > 1 {
						if state, err = d.decode(in.data); err != nil {
							return err
						}
					}
					if err := step.ActionTx(sctx, tx, state); err != nil {
						actErr = err
						return err
					}
					if data, err = json.Marshal(state); err != nil {
						return fmt.Errorf("saga %s: encode state: %w", d.name, err)
					}
					return o.checkpoint(sctx, tx, in, i, step.Name, phaseAction, "", next, nextState, data, "")
				})
				if actErr != nil && err == actErr {
					return actErr, nil
				}
				return nil, err
			}
			if err := step.Action(sctx, state); err != nil {
				return err, nil
			}
			if data, err = json.Marshal(state); err != nil {
				return nil, fmt.Errorf("saga %s: encode state: %w", d.name, err)
			}
			if next < len(d.steps) && d.steps[next].ActionTx != nil && ctx.Err() == nil {
				moved = true
				return nil, d.checkpointWithNext(ctx, o, in, i, state, data)
			}
			if step.NoCheckpoint && next < len(d.steps) {
				unrecorded = true
				return nil, nil
			}
			// The action took effect: record it even if the orchestrator is closing.
			cctx := context.WithoutCancel(ctx)
			return nil, o.st.InTx(cctx, func(tx *sql.Tx) error {
				return o.checkpoint(cctx, tx, in, i, step.Name, phaseAction, "", next, nextState, data, "")
			})
		}()
		if err != nil {
			return err
		}
		if actErr == nil {
			switch {
			case unrecorded:
				// The store keeps the saga where it was; data is what a retried next
				// step and the compensations start from.
				in.passed = append(in.passed, passedGuard{step: i, name: step.Name})
				in.step, in.data, in.decoded = next, data, state
			case !moved:
				in.step, in.state, in.data, in.passed, in.decoded = next, nextState, data, nil, state
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pause, why := retry.pause(attempt), ""
		switch {
		case errors.As(actErr, new(permanentError)):
			why = "permanent error"
		case retry.Attempts > 0 && attempt >= retry.Attempts:
			why = "attempts spent"
		case Transient(actErr, step.Idempotent):
			pause = max(pause, retryAfter(actErr))
			if time.Since(first)+pause > step.budget() {
				why = "retry budget spent"
			}
		case retry.Attempts == 0:
			why = "not transient"
		}
		if why != "" {
			o.log.Warn("saga: step failed; compensating", "saga", d.name, "id", in.id, "step", step.Name,
				"attempts", attempt, "why", why, "elapsed", time.Since(first).Round(time.Millisecond), "err", actErr)
			return d.startCompensation(ctx, o, in, i, actErr)
		}
		o.log.Info("saga: step failed; retrying", "saga", d.name, "id", in.id, "step", step.Name, "attempt", attempt,
			"pause", pause.Round(time.Millisecond), "err", actErr)
		if err := sleep(ctx, pause); err != nil {
			return err
		}
	}
}

// checkpointWithNext records the plain action i of in, which took effect leaving the
// state state, encoded as data, in the transaction that makes the first attempt of step i+1, an ActionTx:
// one transaction instead of two, and the saga moves on past both steps. When that
// attempt fails, or the transaction does, step i is recorded by itself, as
// runAction records a plain action, and a failed attempt is handed to the run of step
// i+1 (in.first), which counts it as its first. It moves in on as far as it recorded.
func (d *Definition[S]) checkpointWithNext(ctx context.Context, o *Orchestrator, in *instance, i int, state *S, data []byte) error {
	j := i + 1
	step, stepJ := &d.steps[i], &d.steps[j]
	next, nextState := j+1, Running
	if next == len(d.steps) {
		nextState = Completed
	}
	// The action took effect: record it even if the orchestrator is closing.
	cctx := context.WithoutCancel(ctx)
	begun := time.Now()
	sctx, cancel := d.stepCtx(ctx, in, j, phaseAction, 1)
	defer cancel()
	var actErr error
	var dataJ []byte
	var cur *S
	tries := 0
	err := o.st.InTx(cctx, func(tx *sql.Tx) error {
		actErr = nil
		cur = state
		if tries++; tries > 1 { // a retried transaction starts from step i's state again
			var err error
			if cur, err = d.decode(data); err != nil {
				return err
			}
		}
		if err := stepJ.ActionTx(sctx, tx, cur); err != nil {
			actErr = err
			return err
		}
		var err error
		if dataJ, err = json.Marshal(cur); err != nil {
			return fmt.Errorf("saga %s: encode state: %w", d.name, err)
		}
		// Step i's record goes with step j's, in one statement.
		return o.checkpoint(sctx, tx, in, j, stepJ.Name, phaseAction, "", next, nextState, dataJ, "",
			stepRecord{step: i, name: step.Name, phase: phaseAction})
	})
	if err == nil {
		in.step, in.state, in.data, in.passed, in.decoded = next, nextState, dataJ, nil, cur
		return nil
	}
	if err := o.st.InTx(cctx, func(tx *sql.Tx) error {
		return o.checkpoint(cctx, tx, in, i, step.Name, phaseAction, "", j, Running, data, "")
	}); err != nil {
		return err
	}
	in.step, in.state, in.data, in.passed, in.decoded = j, Running, data, nil, nil
	if actErr != nil && err == actErr {
		in.first = &attempt{err: actErr, begun: begun}
	}
	return nil
}

// lastCompensable returns the index of the last step at or before i that has a
// compensation, or -1.
func (d *Definition[S]) lastCompensable(i int) int {
	for ; i >= 0; i-- {
		if d.steps[i].hasCompensation() {
			return i
		}
	}
	return -1
}

// startCompensation records that step failed with cause and moves in to compensating the
// steps before it.
func (d *Definition[S]) startCompensation(ctx context.Context, o *Orchestrator, in *instance, failed int, cause error) error {
	next := d.lastCompensable(failed - 1)
	state := Compensating
	if next < 0 {
		state = Compensated
	}
	msg := fmt.Sprintf("step %s: %v", d.steps[failed].Name, cause)
	err := o.st.InTx(ctx, func(tx *sql.Tx) error {
		return o.checkpoint(ctx, tx, in, failed, d.steps[failed].Name, phaseFailed, cause.Error(), next, state, in.data, msg)
	})
	if err != nil {
		return err
	}
	in.step, in.state, in.errMsg, in.passed = next, state, msg, nil
	return nil
}

// runCompensation runs the next compensation of in until it succeeds and checkpoints it.
func (d *Definition[S]) runCompensation(ctx context.Context, o *Orchestrator, in *instance) error {
	i := in.step
	if i < 0 || i >= len(d.steps) || !d.steps[i].hasCompensation() {
		i = d.lastCompensable(min(i, len(d.steps)-1))
	}
	if i < 0 {
		err := o.st.InTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, o.st.Rebind(`UPDATE saga_instances SET status = ?, step = -1, updated_at = ?
				WHERE id = ? AND owner = ? AND `+fence),
				string(Compensated), time.Now().UnixNano(), in.id, o.owner, o.owner, o.instance)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errLostClaim
			}
			return nil
		})
		if err == nil {
			in.state, in.step = Compensated, -1
		}
		return err
	}
	step := &d.steps[i]
	retry := step.Retry.withDefaults()
	retry.Max = max(min(retry.Max, o.compMax), retry.Initial)
	next := d.lastCompensable(i - 1)
	nextState := Compensating
	if next < 0 {
		nextState = Compensated
	}
	for attempt := 1; ; attempt++ {
		state, err := d.state(in)
		if err != nil {
			return d.fail(ctx, o, in, err)
		}
		var data []byte
		compErr, err := func() (compErr, err error) {
			sctx, cancel := d.stepCtx(ctx, in, i, phaseCompensate, attempt)
			defer cancel()
			if step.CompensateTx != nil {
				tries := 0
				err = o.st.InTx(sctx, func(tx *sql.Tx) error {
					compErr = nil
					if tries++; tries > 1 {
						if state, err = d.decode(in.data); err != nil {
							return err
						}
					}
					if err := step.CompensateTx(sctx, tx, state); err != nil {
						compErr = err
						return err
					}
					if data, err = json.Marshal(state); err != nil {
						return fmt.Errorf("saga %s: encode state: %w", d.name, err)
					}
					return o.checkpoint(sctx, tx, in, i, step.Name, phaseCompensate, "", next, nextState, data, in.errMsg)
				})
				if compErr != nil && err == compErr {
					return compErr, nil
				}
				return nil, err
			}
			if err := step.Compensate(sctx, state); err != nil {
				return err, nil
			}
			if data, err = json.Marshal(state); err != nil {
				return nil, fmt.Errorf("saga %s: encode state: %w", d.name, err)
			}
			cctx := context.WithoutCancel(ctx)
			return nil, o.st.InTx(cctx, func(tx *sql.Tx) error {
				return o.checkpoint(cctx, tx, in, i, step.Name, phaseCompensate, "", next, nextState, data, in.errMsg)
			})
		}()
		if err != nil {
			return err
		}
		if compErr == nil {
			in.step, in.state, in.data, in.decoded = next, nextState, data, state
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		o.log.Warn("saga: compensation failed; retrying", "saga", d.name, "id", in.id, "step", step.Name, "attempt", attempt, "err", compErr)
		if err := sleep(ctx, retry.pause(attempt)); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
