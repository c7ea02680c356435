package devrun_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/devrun"
)

// TestSuperviseEndsStopped cancels the supervision of a process that keeps exiting at
// different moments, including before it starts and while its backoff timer fires: an
// instance whose supervisor has returned is stopped, never left "backoff" (which a select
// that took the timer over the ended context used to leave).
func TestSuperviseEndsStopped(t *testing.T) {
	// The process: this test binary running no test, which exits at once.
	logs := devrun.NewLogStore(1000)
	for i := range 30 {
		in := &devrun.Instance{Service: "crash", ID: "crash-1", Bin: os.Args[0], Args: []string{"-test.run=^$"}}
		ctx, cancel := context.WithCancel(context.Background())
		if i == 0 {
			cancel() // before the first start
		} else {
			time.AfterFunc(time.Duration(i)*time.Millisecond, cancel)
		}
		// A backoff of a microsecond: its timer is often ready when the context ends.
		in.Supervise(ctx, logs, devrun.Backoff{Min: time.Microsecond, Max: time.Microsecond, Stable: time.Hour}, time.Second)
		cancel()
		if st := in.Status(); st.State != devrun.StateStopped || st.PID != 0 {
			t.Fatalf("run %d: after Supervise returned the instance is %q (pid %d), want stopped", i, st.State, st.PID)
		}
	}
}
