package shop_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/devrun"
	"github.com/svckit/svckit/store"
)

// chaosRun is the shop under svckit dev for the chaos tests, quiet, with fast restarts,
// and its stores open for the checks afterwards.
type chaosRun struct {
	t     *testing.T
	sys   *devrun.System
	state string
	ready context.Context // bounds waiting for readiness after a kill
}

// startChaosRun starts the shop and waits until every instance is ready; it stops when
// the test ends.
func startChaosRun(t *testing.T) *chaosRun {
	t.Helper()
	ctx := context.Background()
	state := t.TempDir()
	sys, err := devrun.Start(ctx, devrun.Options{Dir: ".", StateDir: state, Out: writerFunc(func(p []byte) (int, error) { return len(p), nil }),
		Quiet: true, Grace: 10 * time.Second, Backoff: devrun.Backoff{Min: 100 * time.Millisecond, Max: time.Second, Stable: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sys.Stop(context.Background()) })
	ready, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	if err := sys.WaitReady(ready); err != nil {
		t.Fatal(err)
	}
	return &chaosRun{t: t, sys: sys, state: state, ready: ready}
}

// db opens a service's SQLite store.
func (r *chaosRun) db(service string) *store.Store {
	r.t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(r.state, "data", service+".db"))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { st.Close() })
	return st
}

// count runs a query that returns one number.
func (r *chaosRun) count(st *store.Store, q string) int64 {
	r.t.Helper()
	var n int64
	if err := st.ReadDB().QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// tokens returns a token per load worker: eight customers, the last one "decline-chaos",
// whose payments are declined and its orders cancelled on purpose.
func (r *chaosRun) tokens() map[int]string {
	r.t.Helper()
	tokens := map[int]string{}
	for w := range 8 {
		subject := fmt.Sprintf("chaos-%d", w)
		if w == 7 {
			subject = "decline-chaos"
		}
		tok, err := r.sys.DevToken(subject)
		if err != nil {
			r.t.Fatal(err)
		}
		tokens[w] = tok
	}
	return tokens
}
