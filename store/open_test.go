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
// the given time (Unix nanoseconds), and returns its error output as an error.
func runOpenChild(t *testing.T, dsn string, at int64) error {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteOpenChild$")
	cmd.Env = append(os.Environ(), "SVCKIT_STORE_OPEN_DSN="+dsn, "SVCKIT_STORE_OPEN_AT="+strconv.FormatInt(at, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// TestSQLiteOpenChild is TestSQLiteOpenTogether's other process; it does nothing unless
// that test started it.
func TestSQLiteOpenChild(t *testing.T) {
	dsn := os.Getenv("SVCKIT_STORE_OPEN_DSN")
	if dsn == "" {
		t.Skip("run by TestSQLiteOpenTogether")
	}
	at, err := strconv.ParseInt(os.Getenv("SVCKIT_STORE_OPEN_AT"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Unix(0, at)))
	if err := openAndMigrate(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
}
