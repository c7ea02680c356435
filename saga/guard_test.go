package saga_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

// testGuardSteps covers guards, steps with a compensation and no action: they run
// nothing going forward, are recorded in the transaction that records the step after
// them (or the failure that compensates them), and their compensations run when a later
// step fails for good; a saga stopped past a guard but before its next checkpoint runs
// from the guard again.
func testGuardSteps(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	guard := func(j *journal, name string) saga.Step[counter] {
		return saga.Step[counter]{Name: name, Compensate: func(context.Context, *counter) error {
			j.add("undo " + name)
			return nil
		}}
	}
	for _, tc := range []struct {
		name   string
		failB  int // b's failures; < 0 for good
		state  saga.State
		calls  []string
		steps  []rec // the steps recorded, in order
		sameAt [][2]int
	}{
		{"completes", 0, saga.Completed, []string{"a", "b"},
			[]rec{{"guard-a", "action"}, {"a", "action"}, {"guard-b", "action"}, {"b", "action"}, {"last", "action"}},
			[][2]int{{0, 1}, {2, 3}}},
		{"b refused: both guards compensate", -1, saga.Compensated, []string{"a", "b", "undo guard-b", "undo guard-a"},
			[]rec{{"guard-a", "action"}, {"a", "action"}, {"guard-b", "action"}, {"b", "failed"}, {"guard-b", "compensate"}, {"guard-a", "compensate"}},
			[][2]int{{0, 1}, {2, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			o := newOrchestrator(t, st)
			var j journal
			b := step(&j, "b", tc.failB, 0)
			b.Compensate = nil
			a := step(&j, "a", 0, 0)
			a.Compensate = nil
			def := saga.Define("guards", guard(&j, "guard-a"), a, guard(&j, "guard-b"), b,
				saga.Step[counter]{Name: "last", Compensate: func(context.Context, *counter) error { return errors.New("not reached") }})
			id, err := saga.Start(ctx, o, def, counter{})
			if err != nil {
				t.Fatal(err)
			}
			if s, err := o.Wait(ctx, id); err != nil || s.State != tc.state {
				t.Fatalf("Wait = %s (%s), %v; want %s", s.State, s.Error, err, tc.state)
			}
			if got := j.get(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls %q, want %q", got, tc.calls)
			}
			full, err := o.Status(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			checkRecorded(t, full.Steps, tc.steps, tc.sameAt)
		})
	}

	t.Run("resumed from the guard", func(t *testing.T) {
		st := openStore(t)
		var j journal
		blocked := make(chan struct{})
		block := true
		mk := func() *saga.Definition[counter] {
			return saga.Define("guard-resume",
				step(&j, "a", 0, 0),
				guard(&j, "guard-b"),
				saga.Step[counter]{Name: "b", Action: func(ctx context.Context, c *counter) error {
					j.add("b")
					if block {
						close(blocked)
						<-ctx.Done()
						return ctx.Err()
					}
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
		if s, _ := o1.Status(ctx, id); s.State != saga.Running || s.Step != 1 || len(s.Steps) != 1 {
			t.Fatalf("after close: %s at step %d, steps %+v; want running at the guard (1), a recorded", s.State, s.Step, s.Steps)
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
			t.Errorf("calls %q, want %q", j.get(), want)
		}
		full, err := o2.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%d %s %s", len(full.Steps), full.Steps[1].Name, full.Steps[2].Name); got != "3 guard-b b" {
			t.Errorf("steps recorded %+v", full.Steps)
		}
	})
}

// rec is a step record as a test expects it: the step's name and the phase recorded.
type rec struct{ step, phase string }

// checkRecorded checks the step records of a saga against want, in order, and that each
// pair in sameAt (indexes into them) was recorded by one checkpoint (the same time).
func checkRecorded(t *testing.T, steps []saga.StepRecord, want []rec, sameAt [][2]int) {
	t.Helper()
	var got []rec
	for _, r := range steps {
		got = append(got, rec{r.Name, r.Phase})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("steps recorded %v, want %v", got, want)
	}
	for _, p := range sameAt {
		if a, b := steps[p[0]].At, steps[p[1]].At; !a.Equal(b) {
			t.Errorf("%s recorded at %v, %s at %v: want one checkpoint", steps[p[0]].Name, a, steps[p[1]].Name, b)
		}
	}
}
