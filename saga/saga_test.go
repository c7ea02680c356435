package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

// TestSQLite runs the suite on SQLite; postgres_test.go runs it on PostgreSQL.
func TestSQLite(t *testing.T) { suite(t, sqliteStore) }

func suite(t *testing.T, open func(testing.TB) *store.Store) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, func(testing.TB) *store.Store)
	}{
		{"Saga", testSaga},
		{"StepTimeout", testStepTimeout},
		{"StatusAndKey", testStatusAndKey},
		{"Resume", testResume},
		{"Owners", testOwners},
		{"UnknownDefinition", testUnknownDefinition},
		{"SameOwner", testSameOwner},
		{"FirstStepInStart", testFirstStepInStart},
		{"StartTwiceFirstStepInStart", testStartTwiceFirstStepInStart},
		{"ActionTxAfterPlainStep", testActionTxAfterPlainStep},
		{"GuardSteps", testGuardSteps},
		{"NoCheckpoint", testNoCheckpoint},
		{"RetryStartsFromCheckpoint", testRetryStartsFromCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func sqliteStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "saga.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newOrchestrator(t testing.TB, st *store.Store, opts ...saga.Option) *saga.Orchestrator {
	t.Helper()
	o, err := saga.New(context.Background(), st, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close(context.Background()) })
	return o
}

// journal records the calls steps make, in order.
type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.calls = append(j.calls, s)
	j.mu.Unlock()
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.calls)
}

type counter struct {
	Visited []string `json:"visited"`
}

// step returns a step named name whose action fails failures times (permanently if
// failures < 0) and whose compensation fails compFailures times before it succeeds.
func step(j *journal, name string, failures, compFailures int) saga.Step[counter] {
	var tries, compTries atomic.Int32
	return saga.Step[counter]{
		Name: name,
		Action: func(ctx context.Context, c *counter) error {
			j.add(name)
			if failures < 0 {
				return saga.Permanent(fmt.Errorf("%s refused", name))
			}
			if int(tries.Add(1)) <= failures {
				return fmt.Errorf("%s failed", name)
			}
			c.Visited = append(c.Visited, name)
			return nil
		},
		Compensate: func(ctx context.Context, c *counter) error {
			j.add("undo " + name)
			if int(compTries.Add(1)) <= compFailures {
				return errors.New("undo failed")
			}
			return nil
		},
		Retry: saga.Retry{Attempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond},
	}
}

func testSaga(t *testing.T, openStore func(testing.TB) *store.Store) {
	tests := []struct {
		name    string
		steps   func(j *journal) []saga.Step[counter]
		state   saga.State
		calls   []string
		visited []string
	}{
		{
			name: "all succeed",
			steps: func(j *journal) []saga.Step[counter] {
				return []saga.Step[counter]{step(j, "a", 0, 0), step(j, "b", 0, 0), step(j, "c", 0, 0)}
			},
			state:   saga.Completed,
			calls:   []string{"a", "b", "c"},
			visited: []string{"a", "b", "c"},
		},
		{
			name: "retried until it succeeds",
			steps: func(j *journal) []saga.Step[counter] {
				return []saga.Step[counter]{step(j, "a", 0, 0), step(j, "b", 2, 0)}
			},
			state:   saga.Completed,
			calls:   []string{"a", "b", "b", "b"},
			visited: []string{"a", "b"},
		},
		{
			name: "compensated in reverse order",
			steps: func(j *journal) []saga.Step[counter] {
				return []saga.Step[counter]{step(j, "a", 0, 0), step(j, "b", 0, 0), step(j, "c", 5, 0)}
			},
			state:   saga.Compensated,
			calls:   []string{"a", "b", "c", "c", "c", "undo b", "undo a"},
			visited: []string{"a", "b"},
		},
		{
			name: "permanent error is not retried",
			steps: func(j *journal) []saga.Step[counter] {
				return []saga.Step[counter]{step(j, "a", 0, 0), step(j, "b", -1, 0)}
			},
			state:   saga.Compensated,
			calls:   []string{"a", "b", "undo a"},
			visited: []string{"a"},
		},
		{
			name: "compensation retried until it succeeds",
			steps: func(j *journal) []saga.Step[counter] {
				return []saga.Step[counter]{step(j, "a", 0, 4), step(j, "b", -1, 0)}
			},
			state:   saga.Compensated,
			calls:   []string{"a", "b", "undo a", "undo a", "undo a", "undo a", "undo a"},
			visited: []string{"a"},
		},
		{
			name: "first step fails: nothing to compensate",
			steps: func(j *journal) []saga.Step[counter] {
				return []saga.Step[counter]{step(j, "a", -1, 0), step(j, "b", 0, 0)}
			},
			state: saga.Compensated,
			calls: []string{"a"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			o := newOrchestrator(t, openStore(t), saga.WithCompensationBackoff(time.Millisecond))
			var j journal
			def := saga.Define("test", tc.steps(&j)...)
			id, err := saga.Start(ctx, o, def, counter{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := o.Wait(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if s.State != tc.state {
				t.Fatalf("state %s, want %s (error %q)", s.State, tc.state, s.Error)
			}
			if got := j.get(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			var c counter
			if err := jsonUnmarshal(s.Data, &c); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Visited, tc.visited) {
				t.Errorf("state %q, want %q", c.Visited, tc.visited)
			}
			if tc.state == saga.Compensated && s.Error == "" {
				t.Error("no error recorded")
			}
		})
	}
}

func testStepTimeout(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	o := newOrchestrator(t, openStore(t))
	var j journal
	def := saga.Define("timeout",
		step(&j, "a", 0, 0),
		saga.Step[counter]{
			Name:    "slow",
			Timeout: 10 * time.Millisecond,
			Retry:   saga.Retry{Attempts: 2, Initial: time.Millisecond},
			Action: func(ctx context.Context, _ *counter) error {
				j.add("slow")
				<-ctx.Done() // a remote call that hangs until its deadline
				return ctx.Err()
			},
		},
	)
	id, err := saga.Start(ctx, o, def, counter{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := o.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != saga.Compensated || !slices.Equal(j.get(), []string{"a", "slow", "slow", "undo a"}) {
		t.Fatalf("state %s, calls %q", s.State, j.get())
	}
}

func testStatusAndKey(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	o := newOrchestrator(t, openStore(t))
	var keys []string
	def := saga.Define("keys",
		saga.Step[counter]{Name: "one", Action: func(ctx context.Context, _ *counter) error {
			keys = append(keys, saga.Key(ctx))
			return nil
		}},
		saga.Step[counter]{Name: "two", ActionTx: func(ctx context.Context, tx *sql.Tx, _ *counter) error {
			keys = append(keys, saga.Key(ctx))
			return nil
		}},
	)
	id, err := saga.Start(ctx, o, def, counter{}, saga.WithID("order-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	s, err := o.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"order-1/one", "order-1/two"}; !slices.Equal(keys, want) {
		t.Errorf("keys %q, want %q", keys, want)
	}
	if s.ID != "order-1" || s.Name != "keys" || s.State != saga.Completed || len(s.Steps) != 2 ||
		s.Steps[0].Name != "one" || s.Steps[1].Phase != "action" {
		t.Errorf("status %+v", s)
	}
	// Starting again with the same id does nothing.
	if id2, err := saga.Start(ctx, o, def, counter{}, saga.WithID("order-1")); err != nil || id2 != id {
		t.Fatalf("second start: %q, %v", id2, err)
	}
	if len(keys) != 2 {
		t.Errorf("second start ran steps: %q", keys)
	}
	if _, err := o.Status(ctx, "nope"); !errors.Is(err, saga.ErrNotFound) {
		t.Errorf("Status(nope) = %v", err)
	}
}

// TestResume stops an orchestrator while a step blocks and resumes the saga in a new one
// on the same store.
func testResume(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	st := openStore(t)
	var j journal
	blocked := make(chan struct{})
	block := true
	mk := func() *saga.Definition[counter] {
		return saga.Define("resume",
			step(&j, "a", 0, 0),
			saga.Step[counter]{Name: "b", Action: func(ctx context.Context, c *counter) error {
				j.add("b")
				if block {
					close(blocked)
					<-ctx.Done()
					return ctx.Err()
				}
				c.Visited = append(c.Visited, "b")
				return nil
			}},
		)
	}
	o1, err := saga.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	id, err := saga.Start(ctx, o1, mk(), counter{})
	if err != nil {
		t.Fatal(err)
	}
	<-blocked
	if err := o1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := o1.Status(ctx, id); s.State != saga.Running || s.Step != 1 {
		t.Fatalf("after close: %s at step %d", s.State, s.Step)
	}
	block = false
	o2 := newOrchestrator(t, st)
	if err := o2.Register(mk()); err != nil {
		t.Fatal(err)
	}
	if n, err := o2.Resume(ctx); err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v", n, err)
	}
	s, err := o2.Wait(ctx, id)
	if err != nil || s.State != saga.Completed {
		t.Fatalf("resumed: %s, %v", s.State, err)
	}
	if want := []string{"a", "b", "b"}; !slices.Equal(j.get(), want) {
		t.Errorf("calls %q, want %q (a must not run again)", j.get(), want)
	}
}

// TestOwners: a second owner does not take a saga over while the first one's claim lasts,
// and does once it lapsed; the first then stops at its checkpoint.
func testOwners(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	st := openStore(t)
	release, entered := make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	def := saga.Define("owned",
		saga.Step[counter]{Name: "a", Action: func(ctx context.Context, c *counter) error {
			if runs.Add(1) == 1 {
				close(entered)
				<-release // the first owner hangs here
			}
			return nil
		}},
	)
	o1 := newOrchestrator(t, st, saga.WithOwner("r1", time.Hour))
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // runs before o1's Close
	id, err := saga.Start(ctx, o1, def, counter{})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	o2 := newOrchestrator(t, st, saga.WithOwner("r2", time.Hour))
	o2.Register(def)
	if n, err := o2.Resume(ctx); err != nil || n != 0 {
		t.Fatalf("r2 took over a live claim: %d, %v", n, err)
	}
	// Let r1's claim lapse: r1 renews it only every lease/3, so backdate it.
	if _, err := st.DB().Exec(st.Rebind(`UPDATE saga_instances SET lease_until = 0 WHERE id = ?`), id); err != nil {
		t.Fatal(err)
	}
	if n, err := o2.Resume(ctx); err != nil || n != 1 {
		t.Fatalf("r2 Resume = %d, %v", n, err)
	}
	s, err := o2.Wait(ctx, id)
	if err != nil || s.State != saga.Completed {
		t.Fatalf("r2: %s, %v", s.State, err)
	}
	unblock() // r1's checkpoint now fails: the step is recorded and r2 owns the saga
	if err := o1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s, _ := o1.Status(ctx, id); s.State != saga.Completed || len(s.Steps) != 1 {
		t.Fatalf("after r1: %+v", s)
	}
}

func TestDefinePanics(t *testing.T) {
	noop := func(context.Context, *counter) error { return nil }
	tests := map[string][]saga.Step[counter]{
		"no steps":                    nil,
		"no action":                   {{Name: "a"}}, // a guard needs a compensation
		"two actions":                 {{Name: "a", Action: noop, ActionTx: func(context.Context, *sql.Tx, *counter) error { return nil }}},
		"repeated":                    {{Name: "a", Action: noop}, {Name: "a", Action: noop}},
		"unnamed step":                {{Action: noop}},
		"NoCheckpoint on an ActionTx": {{Name: "a", NoCheckpoint: true, ActionTx: func(context.Context, *sql.Tx, *counter) error { return nil }}},
		"NoCheckpoint on a guard":     {{Name: "a", NoCheckpoint: true, Compensate: noop}},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			saga.Define("x", steps...)
		})
	}
}
