package saga_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

// testRetryStartsFromCheckpoint checks that the state a run keeps decoded between steps
// is never one an action changed and then failed: every attempt starts from the state the
// last checkpoint recorded. Each action below changes the state, then fails on its first
// attempt; the plain, Tx and compensation forms, with and without the transaction a Tx
// step shares with a plain step before it, and the compensations see the state the
// failed step was given.
func testRetryStartsFromCheckpoint(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	st := openStore(t)
	o := newOrchestrator(t, st)
	retry := saga.Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond}
	seen := map[string][]string{} // the state each call was given, by step and attempt
	record := func(ctx context.Context, c *counter) bool {
		info, _ := saga.Info(ctx)
		key := info.Name + "/" + info.Phase
		first := seen[key] == nil
		seen[key] = append(slices.Clone(c.Visited), "|")
		if !first {
			seen[key+"/2"] = slices.Clone(c.Visited)
		}
		c.Visited = append(c.Visited, info.Name)
		return first
	}
	errOnce := errors.New("first attempt fails")
	plain := func(name string) saga.Step[counter] {
		return saga.Step[counter]{Name: name, Retry: retry,
			Action: func(ctx context.Context, c *counter) error {
				if record(ctx, c) {
					return errOnce
				}
				return nil
			},
			Compensate: func(ctx context.Context, c *counter) error { record(ctx, c); return nil },
		}
	}
	withTx := func(name string) saga.Step[counter] {
		return saga.Step[counter]{Name: name, Retry: retry,
			ActionTx: func(ctx context.Context, _ *sql.Tx, c *counter) error {
				if record(ctx, c) {
					return errOnce
				}
				return nil
			},
			CompensateTx: func(ctx context.Context, _ *sql.Tx, c *counter) error {
				if record(ctx, c) {
					return errOnce
				}
				return nil
			},
		}
	}
	def := saga.Define("from-checkpoint", withTx("a"), plain("b"), withTx("c"), plain("d"),
		saga.Step[counter]{Name: "e", Action: func(context.Context, *counter) error { return saga.Permanent(errors.New("no")) }})
	id, err := saga.Start(ctx, o, def, counter{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := o.Wait(ctx, id)
	if err != nil || s.State != saga.Compensated {
		t.Fatalf("saga = %+v, %v; want compensated", s, err)
	}
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{"a/action/2", nil},
		{"b/action/2", []string{"a"}},
		{"c/action/2", []string{"a", "b"}},
		{"d/action/2", []string{"a", "b", "c"}},
		{"d/compensate", []string{"a", "b", "c", "d"}},
		{"c/compensate/2", []string{"a", "b", "c", "d", "d"}},
		{"b/compensate", []string{"a", "b", "c", "d", "d", "c"}},
		{"a/compensate/2", []string{"a", "b", "c", "d", "d", "c", "b"}},
	} {
		got := seen[tc.key]
		if i := slices.Index(got, "|"); i >= 0 {
			got = got[:i]
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s was given %q, want %q", tc.key, got, tc.want)
		}
	}
}
