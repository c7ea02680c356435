package saga_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

// testNoCheckpoint covers NoCheckpoint steps: their completion is recorded with the next
// checkpoint (the same transaction, so at the same time), the state they leave reaches
// the steps after them and the compensations, and a saga stopped after one but before
// the next checkpoint runs it again when resumed.
func testNoCheckpoint(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		failC  int // c's failures; < 0 for good
		state  saga.State
		calls  []string
		steps  []rec // the steps recorded, in order
		sameAt [][2]int
		data   string
	}{
		{"completes", 0, saga.Completed, []string{"a", "b", "c"},
			[]rec{{"a", "action"}, {"b", "action"}, {"c", "action"}, {"last", "action"}},
			[][2]int{{1, 2}}, `{"visited":["a","b","c","last"]}`},
		{"next step retried from its state", 1, saga.Completed, []string{"a", "b", "c", "c"},
			[]rec{{"a", "action"}, {"b", "action"}, {"c", "action"}, {"last", "action"}},
			[][2]int{{1, 2}}, `{"visited":["a","b","c","last"]}`},
		{"next step refused: compensated", -1, saga.Compensated, []string{"a", "b", "c", "undo b", "undo a"},
			[]rec{{"a", "action"}, {"b", "action"}, {"c", "failed"}, {"b", "compensate"}, {"a", "compensate"}},
			[][2]int{{1, 2}}, `{"visited":["a","b"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			o := newOrchestrator(t, st)
			var j journal
			b := step(&j, "b", 0, 0)
			b.NoCheckpoint = true
			c := step(&j, "c", tc.failC, 0)
			c.Compensate = nil
			def := saga.Define("nocheckpoint", step(&j, "a", 0, 0), b, c,
				saga.Step[counter]{Name: "last", Action: func(_ context.Context, c *counter) error {
					c.Visited = append(c.Visited, "last")
					return nil
				}})
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
			if string(full.Data) != tc.data {
				t.Errorf("final state %s, want %s", full.Data, tc.data)
			}
		})
	}

	t.Run("resumed before the step", func(t *testing.T) {
		st := openStore(t)
		var j journal
		blocked := make(chan struct{})
		block := true
		mk := func() *saga.Definition[counter] {
			b := step(&j, "b", 0, 0)
			b.NoCheckpoint = true
			return saga.Define("nocheckpoint-resume",
				step(&j, "a", 0, 0),
				b,
				saga.Step[counter]{Name: "c", Action: func(ctx context.Context, c *counter) error {
					j.add("c")
					if block {
						close(blocked)
						<-ctx.Done()
						return ctx.Err()
					}
					c.Visited = append(c.Visited, "c")
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
		if s, _ := o1.Status(ctx, id); s.State != saga.Running || s.Step != 1 || len(s.Steps) != 1 || string(s.Data) != `{"visited":["a"]}` {
			t.Fatalf("after close: %s at step %d, steps %+v, state %s; want running at b (1), a recorded", s.State, s.Step, s.Steps, s.Data)
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
		if want := []string{"a", "b", "c", "b", "c"}; !slices.Equal(j.get(), want) {
			t.Errorf("calls %q, want %q (b runs again, a does not)", j.get(), want)
		}
		full, err := o2.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%d %s %s %s", len(full.Steps), full.Steps[0].Name, full.Steps[1].Name, full.Steps[2].Name); got != "3 a b c" {
			t.Errorf("steps recorded %+v", full.Steps)
		}
		if string(full.Data) != `{"visited":["a","b","c"]}` {
			t.Errorf("final state %s", full.Data)
		}
	})
}
