package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

// testFirstStepInStart covers a first step that is an ActionTx, whose first attempt Start
// makes in the transaction that records the saga: a failed attempt counts as the run's
// first (attempts, Attempt numbers, compensation), its effects are rolled back, and a
// one-step saga is complete when Start returns.
func testFirstStepInStart(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	permanent := saga.Permanent(errors.New("refused"))
	for _, tc := range []struct {
		name     string
		fail     []error // what attempt i of the first action returns (nil: success)
		retry    saga.Retry
		steps    int // 1 or 2
		state    saga.State
		attempts []int // the Attempt numbers the first action saw
		effects  int   // rows the first action left
	}{
		{"succeeds at once", nil, saga.Retry{}, 2, saga.Completed, []int{1}, 1},
		{"one step, done in Start", nil, saga.Retry{}, 1, saga.Completed, []int{1}, 1},
		{"fails once, retried", []error{errors.New("busy")}, saga.Retry{Attempts: 3, Initial: time.Millisecond}, 2, saga.Completed, []int{1, 2}, 1},
		{"fails with one attempt allowed", []error{errors.New("busy")}, saga.Retry{Attempts: 1, Initial: time.Millisecond}, 2, saga.Compensated, []int{1}, 0},
		{"fails for good", []error{permanent}, saga.Retry{Attempts: 3, Initial: time.Millisecond}, 2, saga.Compensated, []int{1}, 0},
		{"not transient, no attempts set", []error{errors.New("no")}, saga.Retry{Initial: time.Millisecond}, 2, saga.Compensated, []int{1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			if _, err := st.DB().Exec(`CREATE TABLE effects (saga_id TEXT NOT NULL, attempt INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			o := newOrchestrator(t, st)
			var mu sync.Mutex
			var attempts []int
			steps := []saga.Step[counter]{{
				Name: "reserve",
				ActionTx: func(ctx context.Context, tx *sql.Tx, c *counter) error {
					info, _ := saga.Info(ctx)
					mu.Lock()
					attempts = append(attempts, info.Attempt)
					n := len(attempts)
					mu.Unlock()
					if _, err := tx.ExecContext(ctx, st.Rebind(`INSERT INTO effects (saga_id, attempt) VALUES (?, ?)`), info.SagaID, info.Attempt); err != nil {
						return err
					}
					if n <= len(tc.fail) {
						return tc.fail[n-1]
					}
					c.Visited = append(c.Visited, "reserve")
					return nil
				},
				Retry: tc.retry,
			}}
			if tc.steps == 2 {
				steps = append(steps, saga.Step[counter]{Name: "ship", Action: func(ctx context.Context, c *counter) error {
					c.Visited = append(c.Visited, "ship")
					return nil
				}})
			}
			id, err := saga.Start(ctx, o, saga.Define("first", steps...), counter{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := o.Wait(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if s.State != tc.state {
				t.Fatalf("state %s (%s), want %s", s.State, s.Error, tc.state)
			}
			mu.Lock()
			got := slices.Clone(attempts)
			mu.Unlock()
			if !slices.Equal(got, tc.attempts) {
				t.Errorf("the first action saw attempts %v, want %v", got, tc.attempts)
			}
			var effects int
			if err := st.ReadDB().QueryRow(st.Rebind(`SELECT COUNT(*) FROM effects WHERE saga_id = ?`), id).Scan(&effects); err != nil {
				t.Fatal(err)
			}
			if effects != tc.effects {
				t.Errorf("%d effects of the first action committed, want %d", effects, tc.effects)
			}
			full, err := o.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(full.Steps) == 0 || full.Steps[0].Name != "reserve" {
				t.Errorf("steps recorded: %+v", full.Steps)
			}
		})
	}
}

// testStartTwiceFirstStepInStart starts a saga whose first step is an ActionTx twice with
// the same id: the second Start does nothing, and the first action's effect is committed
// once.
func testStartTwiceFirstStepInStart(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	st := openStore(t)
	if _, err := st.DB().Exec(`CREATE TABLE effects (saga_id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	o := newOrchestrator(t, st)
	def := saga.Define("twice", saga.Step[counter]{Name: "reserve", ActionTx: func(ctx context.Context, tx *sql.Tx, c *counter) error {
		info, _ := saga.Info(ctx)
		_, err := tx.ExecContext(ctx, st.Rebind(`INSERT INTO effects (saga_id) VALUES (?)`), info.SagaID)
		return err
	}})
	for range 2 {
		id, err := saga.Start(ctx, o, def, counter{}, saga.WithID("order-1"))
		if err != nil || id != "order-1" {
			t.Fatalf("Start = %q, %v", id, err)
		}
		if s, err := o.Wait(ctx, id); err != nil || s.State != saga.Completed {
			t.Fatalf("Wait = %+v, %v", s, err)
		}
	}
	var n int
	if err := st.ReadDB().QueryRow(`SELECT COUNT(*) FROM effects`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d effects, %v; want 1", n, err)
	}
}

// testActionTxAfterPlainStep covers an ActionTx step that follows a plain Action: its first
// attempt runs in the transaction that records the plain step. A failed attempt leaves the
// plain step recorded and counts as the step's first; compensation then undoes the plain
// step once.
func testActionTxAfterPlainStep(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		fail     []error
		retry    saga.Retry
		state    saga.State
		attempts []int
		charged  int // calls of the plain action
		refunds  int // calls of its compensation
		effects  int
	}{
		{"succeeds at once", nil, saga.Retry{}, saga.Completed, []int{1}, 1, 0, 1},
		{"fails once, retried", []error{errors.New("busy")}, saga.Retry{Attempts: 3, Initial: time.Millisecond}, saga.Completed, []int{1, 2}, 1, 0, 1},
		{"fails with one attempt allowed", []error{errors.New("busy")}, saga.Retry{Attempts: 1, Initial: time.Millisecond}, saga.Compensated, []int{1}, 1, 1, 0},
		{"fails for good", []error{saga.Permanent(errors.New("refused"))}, saga.Retry{Attempts: 3, Initial: time.Millisecond}, saga.Compensated, []int{1}, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			if _, err := st.DB().Exec(`CREATE TABLE effects (saga_id TEXT NOT NULL, attempt INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			o := newOrchestrator(t, st)
			var mu sync.Mutex
			var attempts []int
			var charged, refunds int
			def := saga.Define("after",
				saga.Step[counter]{Name: "charge",
					Action: func(ctx context.Context, c *counter) error {
						mu.Lock()
						charged++
						mu.Unlock()
						c.Visited = append(c.Visited, "charged")
						return nil
					},
					Compensate: func(ctx context.Context, c *counter) error {
						mu.Lock()
						refunds++
						mu.Unlock()
						return nil
					}},
				saga.Step[counter]{Name: "reserve", Retry: tc.retry,
					ActionTx: func(ctx context.Context, tx *sql.Tx, c *counter) error {
						info, _ := saga.Info(ctx)
						mu.Lock()
						attempts = append(attempts, info.Attempt)
						n := len(attempts)
						mu.Unlock()
						if !slices.Equal(c.Visited, []string{"charged"}) {
							return saga.Permanent(errors.New("the state of the step before is missing"))
						}
						if _, err := tx.ExecContext(ctx, st.Rebind(`INSERT INTO effects (saga_id, attempt) VALUES (?, ?)`), info.SagaID, info.Attempt); err != nil {
							return err
						}
						if n <= len(tc.fail) {
							return tc.fail[n-1]
						}
						return nil
					}},
			)
			id, err := saga.Start(ctx, o, def, counter{})
			if err != nil {
				t.Fatal(err)
			}
			s, err := o.Wait(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if s.State != tc.state {
				t.Fatalf("state %s (%s), want %s", s.State, s.Error, tc.state)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(attempts, tc.attempts) || charged != tc.charged || refunds != tc.refunds {
				t.Errorf("attempts %v, charged %d, refunded %d; want %v, %d, %d", attempts, charged, refunds, tc.attempts, tc.charged, tc.refunds)
			}
			var effects int
			if err := st.ReadDB().QueryRow(st.Rebind(`SELECT COUNT(*) FROM effects WHERE saga_id = ?`), id).Scan(&effects); err != nil {
				t.Fatal(err)
			}
			if effects != tc.effects {
				t.Errorf("%d effects committed, want %d", effects, tc.effects)
			}
			full, err := o.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(full.Steps) < 2 || full.Steps[0].Name != "charge" {
				t.Errorf("steps recorded: %+v", full.Steps)
			}
		})
	}
}
