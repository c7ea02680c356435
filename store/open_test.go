package store_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/store"
)

// openAndMigrate opens dsn and applies baseFS, as a service's start does.
func openAndMigrate(ctx context.Context, dsn string) error {
	s, err := store.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx, baseFS)
}

// TestSQLiteOpenTogether starts several replicas on one new SQLite file at the same
// moment, as `svckit dev` does with a service's replicas: each opens the file and
// migrates it. Switching a new file to WAL needs its exclusive lock, and SQLite fails all
// but one of the replicas that try at once with SQLITE_BUSY without waiting; Open must
// wait for the winner instead of failing the replica's start.
func TestSQLiteOpenTogether(t *testing.T) {
	tests := []struct {
		name      string
		rounds    int
		replicas  int
		processes bool
	}{
		// Before the fix, 100 rounds of 4 goroutines failed ~7 opens.
		{name: "goroutines", rounds: 100, replicas: 4},
		{name: "processes", rounds: 8, replicas: 4, processes: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			for round := range tc.rounds {
				dsn := "sqlite:" + filepath.Join(t.TempDir(), fmt.Sprintf("r%d.db", round))
				errs := make([]error, tc.replicas)
				var wg sync.WaitGroup
				if tc.processes {
					at := time.Now().Add(150 * time.Millisecond).UnixNano()
					for i := range errs {
						wg.Go(func() { errs[i] = runOpenChild(t, dsn, at) })
					}
				} else {
					start := make(chan struct{})
					for i := range errs {
						wg.Go(func() {
							<-start
							errs[i] = openAndMigrate(ctx, dsn)
						})
					}
					close(start)
				}
				wg.Wait()
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d, replica %d: %v", round, i, err)
					}
				}
				s, err := store.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				got := count(t, s, "SELECT COUNT(*) FROM schema_migrations")
				s.Close()
				if got != 6 {
					t.Fatalf("round %d: %d migrations recorded, want 6", round, got)
				}
			}
		})
	}
}

// runOpenChild runs this test binary as another process that opens and migrates dsn at
// the given time (Unix nanoseconds; see TestMain), and returns its error output as an
// error.
func runOpenChild(t *testing.T, dsn string, at int64) error {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SVCKIT_STORE_OPEN_DSN="+dsn, "SVCKIT_STORE_OPEN_AT="+strconv.FormatInt(at, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// TestMain runs the tests, or, in a process that TestSQLiteOpenTogether started, only
// that test's other replica: it opens and migrates SVCKIT_STORE_OPEN_DSN at the moment
// SVCKIT_STORE_OPEN_AT names, and exits 1 with the error if that fails.
func TestMain(m *testing.M) {
	dsn := os.Getenv("SVCKIT_STORE_OPEN_DSN")
	if dsn == "" {
		os.Exit(m.Run())
	}
	at, err := strconv.ParseInt(os.Getenv("SVCKIT_STORE_OPEN_AT"), 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "SVCKIT_STORE_OPEN_AT:", err)
		os.Exit(1)
	}
	time.Sleep(time.Until(time.Unix(0, at)))
	if err := openAndMigrate(context.Background(), dsn); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}
