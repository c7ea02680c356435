//go:build integration

package schedule_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/schedule"
	"github.com/svckit/svckit/store"
)

// postgresStore opens a fresh schema on the server named by SVCKIT_TEST_POSTGRES_DSN,
// skipping the test when it is not set.
func postgresStore(t testing.TB) *store.Store {
	t.Helper()
	dsn := os.Getenv("SVCKIT_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("SVCKIT_TEST_POSTGRES_DSN is not set")
	}
	ctx := context.Background()
	admin, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("schedule_%d", time.Now().UnixNano())
	if _, err := admin.DB().ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a, err := store.Open(context.Background(), dsn); err == nil {
			a.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	s, err := store.Open(ctx, dsn+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	testReplicas(t, func(t *testing.T, n int) []schedule.Claimer {
		st := postgresStore(t)
		var out []schedule.Claimer
		for range n {
			c, err := schedule.NewSQL(context.Background(), st)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	})
}
