package saga_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

// sagaOwner returns the owner column of saga id.
func sagaOwner(t *testing.T, st *store.Store, id string) string {
	t.Helper()
	var owner string
	if err := st.DB().QueryRow(st.Rebind(`SELECT owner FROM saga_instances WHERE id = ?`), id).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	return owner
}

// lapse backdates the claim on saga id, as when its owner stopped renewing it long ago.
func lapse(t *testing.T, st *store.Store, id string) {
	t.Helper()
	if _, err := st.DB().Exec(st.Rebind(`UPDATE saga_instances SET lease_until = 0 WHERE id = ?`), id); err != nil {
		t.Fatal(err)
	}
}

// testUnknownDefinition: during a rolling upgrade an older replica, which lacks the
// definition of a new saga type, leaves such sagas alone: it neither claims them nor
// renews a claim on them, so a newer replica takes them over once their claim lapsed.
func testUnknownDefinition(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	st := openStore(t)
	entered := make(chan struct{})
	var once sync.Once
	var runs atomic.Int32
	newType := func(block bool) *saga.Definition[counter] {
		return saga.Define("new-type", saga.Step[counter]{Name: "a", Action: func(ctx context.Context, c *counter) error {
			runs.Add(1)
			if block {
				once.Do(func() { close(entered) })
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}})
	}
	oldType := saga.Define("old-type", saga.Step[counter]{Name: "a", Action: func(context.Context, *counter) error { return nil }})

	// A new replica starts a saga of the new type and goes away mid-step.
	v2, err := saga.New(ctx, st, saga.WithOwner("v2-a", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	id, err := saga.Start(ctx, v2, newType(true), counter{})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := v2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	lapse(t, st, id)

	// An old replica resumes what it can: not the new type.
	v1 := newOrchestrator(t, st, saga.WithOwner("v1", time.Hour))
	if err := v1.Register(oldType); err != nil {
		t.Fatal(err)
	}
	if n, err := v1.Resume(ctx); err != nil || n != 0 {
		t.Fatalf("old replica's Resume = %d, %v; want 0", n, err)
	}
	if owner := sagaOwner(t, st, id); owner != "v2-a" {
		t.Errorf("the old replica claimed a saga it cannot run: owner %q", owner)
	}

	// Another new replica takes it over and finishes it.
	v2b := newOrchestrator(t, st, saga.WithOwner("v2-b", time.Hour))
	if err := v2b.Register(newType(false)); err != nil {
		t.Fatal(err)
	}
	if n, err := v2b.Resume(ctx); err != nil || n != 1 {
		t.Fatalf("new replica's Resume = %d, %v; want 1 (the old replica must not hold the claim)", n, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if s, err := v2b.Wait(wctx, id); err != nil || s.State != saga.Completed {
		t.Fatalf("taken over: %s, %v", s.State, err)
	}
}

// testSameOwner: two orchestrators with the same owner on one store (two replicas left
// on the default owner) do not both run sagas: the one started later takes the owner
// over, and the earlier one fails with ErrOwnerConflict instead of running steps beside
// it.
func testSameOwner(t *testing.T, openStore func(testing.TB) *store.Store) {
	ctx := context.Background()
	st := openStore(t)
	release, entered := make(chan struct{}), make(chan struct{})
	bEntered, bRelease := make(chan struct{}), make(chan struct{})
	var aRuns, bRuns atomic.Int32
	def := saga.Define("same-owner",
		saga.Step[counter]{Name: "a", Action: func(ctx context.Context, c *counter) error {
			if aRuns.Add(1) == 1 {
				close(entered)
				<-release // the first replica's run hangs here
			}
			return nil
		}},
		saga.Step[counter]{Name: "b", Action: func(ctx context.Context, c *counter) error {
			if bRuns.Add(1) == 1 {
				close(bEntered)
				<-bRelease // the second replica's run of b waits until the first replica is done
			}
			return nil
		}},
	)
	logs := &errorLog{errs: make(chan string, 10)}
	r1 := newOrchestrator(t, st, saga.WithLogger(slog.New(logs))) // default owner
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	id, err := saga.Start(ctx, r1, def, counter{})
	if err != nil {
		t.Fatal(err)
	}
	<-entered

	r2 := newOrchestrator(t, st) // a second replica, also on the default owner
	if err := r2.Register(def); err != nil {
		t.Fatal(err)
	}
	// The later replica runs the saga (its step a again: a remote action runs at least
	// once, with the same saga.Key) and is in step b.
	if n, err := r2.Resume(ctx); err != nil || n != 1 {
		t.Fatalf("second replica's Resume = %d, %v", n, err)
	}
	<-bEntered
	// The first replica's step a returns: its checkpoint finds a recorded already, and it
	// must stop there (and say why) rather than go on to b.
	unblock()
	select {
	case msg := <-logs.errs:
		t.Logf("first replica: %s", msg)
	case <-time.After(30 * time.Second):
		t.Error("the first replica did not report the conflict")
	}
	if _, err := saga.Start(ctx, r1, def, counter{}); !errors.Is(err, saga.ErrOwnerConflict) {
		t.Errorf("Start on the first replica after a second took its owner: %v, want ErrOwnerConflict", err)
	}
	if _, err := r1.Resume(ctx); !errors.Is(err, saga.ErrOwnerConflict) {
		t.Errorf("Resume on the first replica: %v, want ErrOwnerConflict", err)
	}
	if err := r1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(bRelease)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if s, err := r2.Wait(wctx, id); err != nil || s.State != saga.Completed {
		t.Fatalf("second replica: %s, %v", s.State, err)
	}
	s, err := r2.Status(ctx, id)
	if err != nil || s.State != saga.Completed || len(s.Steps) != 2 {
		t.Fatalf("status %+v, %v", s, err)
	}
	if n := bRuns.Load(); n != 1 {
		t.Errorf("step b ran %d times, want 1", n)
	}
}

// errorLog is a slog.Handler that passes on the messages of Error records.
type errorLog struct{ errs chan string }

func (l *errorLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		select {
		case l.errs <- r.Message:
		default:
		}
	}
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }
