package saga_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
)

// The crash test runs sagas in a child process (this test binary, re-executed with
// TestCrashChild selected) and SIGKILLs it at random points, crashRuns times, restarting
// it each time; a last child resumes and finishes everything. Then the parent checks the
// store: every saga is terminal, and no effect was applied twice.
//
// Local effects go through ActionTx/CompensateTx into effects (unique per saga, step,
// phase) and effects_log (no constraint: a duplicate there is an effect applied twice).
// Remote-style effects (Action/Compensate in their own transaction) are deduplicated by
// the step's idempotency key in remote; remote_log counts the attempts.

const (
	envDB   = "SAGA_CRASH_DB"
	envMode = "SAGA_CRASH_MODE"
	envN    = "SAGA_CRASH_TOTAL"
)

var crashSchema = fstest.MapFS{
	"001_effects.sql": {Data: []byte(`
CREATE TABLE effects (saga_id TEXT NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL, PRIMARY KEY (saga_id, step, phase));
CREATE TABLE effects_log (saga_id TEXT NOT NULL, step TEXT NOT NULL, phase TEXT NOT NULL);
CREATE TABLE remote (key TEXT PRIMARY KEY);
CREATE TABLE remote_log (key TEXT NOT NULL);
`)},
}

type order struct {
	N      int  `json:"n"`
	FailAt bool `json:"fail_at_ship"`
	Charge int  `json:"charge"`
}

func localEffect(step, phase string) func(ctx context.Context, tx *sql.Tx, _ *order) error {
	return func(ctx context.Context, tx *sql.Tx, _ *order) error {
		info, _ := saga.Info(ctx)
		jitter()
		if _, err := tx.ExecContext(ctx, `INSERT INTO effects (saga_id, step, phase) VALUES (?, ?, ?)`, info.SagaID, step, phase); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO effects_log (saga_id, step, phase) VALUES (?, ?, ?)`, info.SagaID, step, phase)
		return err
	}
}

// remoteEffect applies an effect outside the checkpoint transaction, deduplicated by the
// step's idempotency key, as a payment service would.
func remoteEffect(st *store.Store) func(ctx context.Context, o *order) error {
	return func(ctx context.Context, o *order) error {
		key := saga.Key(ctx)
		jitter()
		err := st.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO remote (key) VALUES (?) ON CONFLICT DO NOTHING`, key); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO remote_log (key) VALUES (?)`, key)
			return err
		})
		jitter()
		o.Charge = o.N * 10
		return err
	}
}

func jitter() { time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) }

func orderSaga(st *store.Store) *saga.Definition[order] {
	return saga.Define("order",
		saga.Step[order]{Name: "reserve", ActionTx: localEffect("reserve", "action"), CompensateTx: localEffect("reserve", "compensate")},
		saga.Step[order]{Name: "charge", Action: remoteEffect(st), Compensate: remoteEffect(st)},
		saga.Step[order]{
			Name: "ship",
			ActionTx: func(ctx context.Context, tx *sql.Tx, o *order) error {
				info, _ := saga.Info(ctx)
				if o.FailAt {
					return saga.Permanent(errors.New("no courier"))
				}
				if info.Attempt == 1 && o.N%3 == 0 {
					return errors.New("transient")
				}
				return localEffect("ship", "action")(ctx, tx, o)
			},
			Retry: saga.Retry{Attempts: 3, Initial: time.Millisecond},
		},
	)
}

// TestCrashChild is the child process of TestCrash; it is skipped unless run by it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envDB)
	if path == "" {
		t.Skip("run by TestCrash")
	}
	total, _ := strconv.Atoi(os.Getenv(envN))
	finish := os.Getenv(envMode) == "finish"
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx, crashSchema, store.WithSet("crashtest")); err != nil {
		t.Fatal(err)
	}
	o, err := saga.New(ctx, st, saga.WithConcurrency(8))
	if err != nil {
		t.Fatal(err)
	}
	def := orderSaga(st)
	if err := o.Register(def); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	var started int
	if err := st.DB().QueryRow(`SELECT COUNT(*) FROM saga_instances`).Scan(&started); err != nil {
		t.Fatal(err)
	}
	for i := started; i < total; i++ {
		id := fmt.Sprintf("s%05d", i)
		if _, err := saga.Start(ctx, o, def, order{N: i, FailAt: i%5 == 0}, saga.WithID(id)); err != nil {
			t.Fatal(err)
		}
		if !finish {
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for i := range total {
		s, err := o.Wait(wctx, fmt.Sprintf("s%05d", i))
		if err != nil {
			t.Fatalf("wait s%05d: %v (state %s)", i, err, s.State)
		}
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func runChild(t *testing.T, path, mode string, total int, kill bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envDB+"="+path, envMode+"="+mode, envN+"="+strconv.Itoa(total))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	ready := false
	var tail []string
	for lines.Scan() {
		if lines.Text() == "ready" {
			ready = true
			break
		}
		tail = append(tail, lines.Text())
	}
	if !ready {
		_ = cmd.Wait()
		t.Fatalf("child did not get ready: %q", tail)
	}
	if kill {
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		go func() {
			for lines.Scan() {
			}
		}()
		_ = cmd.Wait()
		return
	}
	for lines.Scan() {
		tail = append(tail, lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("finishing child: %v\n%q", err, tail)
	}
}

func TestCrash(t *testing.T) {
	if os.Getenv(envDB) != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("short")
	}
	path := filepath.Join(t.TempDir(), "crash.sqlite")
	total := crashRuns * 15
	for range crashRuns {
		runChild(t, path, "run", total, true)
	}
	runChild(t, path, "finish", total, false)

	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	q := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := st.ReadDB().QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	if n := q(`SELECT COUNT(*) FROM saga_instances`); n != total {
		t.Fatalf("%d sagas, want %d", n, total)
	}
	if n := q(`SELECT COUNT(*) FROM saga_instances WHERE status NOT IN ('completed', 'compensated')`); n != 0 {
		t.Errorf("%d sagas not terminal", n)
	}
	if n := q(`SELECT COUNT(*) FROM (SELECT 1 FROM effects_log GROUP BY saga_id, step, phase HAVING COUNT(*) > 1)`); n != 0 {
		t.Errorf("%d local effects applied more than once", n)
	}
	if a, b := q(`SELECT COUNT(*) FROM effects_log`), q(`SELECT COUNT(*) FROM effects`); a != b {
		t.Errorf("effects_log has %d rows, effects %d", a, b)
	}
	failing := total / 5
	want := []struct {
		what  string
		query string
		n     int
	}{
		{"completed", `SELECT COUNT(*) FROM saga_instances WHERE status = 'completed'`, total - failing},
		{"compensated", `SELECT COUNT(*) FROM saga_instances WHERE status = 'compensated'`, failing},
		{"reserve actions", `SELECT COUNT(*) FROM effects WHERE step = 'reserve' AND phase = 'action'`, total},
		{"reserve compensations", `SELECT COUNT(*) FROM effects WHERE step = 'reserve' AND phase = 'compensate'`, failing},
		{"ship actions", `SELECT COUNT(*) FROM effects WHERE step = 'ship' AND phase = 'action'`, total - failing},
		{"charges", `SELECT COUNT(*) FROM remote WHERE key LIKE '%/charge'`, total},
		{"refunds", `SELECT COUNT(*) FROM remote WHERE key LIKE '%/charge/compensate'`, failing},
		{"compensated sagas that shipped", `SELECT COUNT(*) FROM saga_instances i JOIN effects e ON e.saga_id = i.id
			WHERE i.status = 'compensated' AND e.step = 'ship'`, 0},
		{"completed sagas with compensations", `SELECT COUNT(*) FROM saga_instances i JOIN effects e ON e.saga_id = i.id
			WHERE i.status = 'completed' AND e.phase = 'compensate'`, 0},
		{"steps checkpointed", `SELECT COUNT(*) FROM saga_steps WHERE phase = 'action'`, 3*(total-failing) + 2*failing},
	}
	for _, w := range want {
		if n := q(w.query); n != w.n {
			t.Errorf("%s: %d, want %d", w.what, n, w.n)
		}
	}
	t.Logf("%d sagas, %d kills; remote calls repeated after a crash: %d", total, crashRuns,
		q(`SELECT COUNT(*) FROM remote_log`)-q(`SELECT COUNT(*) FROM remote`))
}
