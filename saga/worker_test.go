package saga_test

import (
	"bytes"
	"context"
	"runtime/pprof"
	"testing"

	"github.com/svckit/svckit/saga"
)

// workers returns how many goroutines run the orchestrator's worker loop.
func workers(t *testing.T) int {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b.Bytes(), []byte("saga.(*Orchestrator).worker+"))
}

// TestCloseStopsWorkers checks that the goroutines that run sagas, which wait a while for
// the next one instead of exiting, are gone once Close returns.
func TestCloseStopsWorkers(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	o, err := saga.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	j := &journal{}
	def := saga.Define("workers", step(j, "a", 0, 0), step(j, "b", 0, 0))
	for range 3 {
		id, err := saga.Start(ctx, o, def, counter{})
		if err != nil {
			t.Fatal(err)
		}
		if s, err := o.Wait(ctx, id); err != nil || s.State != saga.Completed {
			t.Fatalf("saga = %+v, %v", s, err)
		}
	}
	if n := workers(t); n < 1 || n > 3 {
		t.Fatalf("%d workers wait for sagas after 3 sagas ran one after another, want 1 to 3", n)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := workers(t); n != 0 {
		t.Errorf("%d workers after Close, want none", n)
	}
}
