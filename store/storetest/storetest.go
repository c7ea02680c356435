// Package storetest gives tests a store on the PostgreSQL server named by the environment
// variable SVCKIT_TEST_POSTGRES_DSN (which .ci/run sets), in a fresh schema that is
// dropped when the test ends.
package storetest

import (
	"context"
	"fmt"
	_ "github.com/svckit/svckit/store/postgres" // storetest opens PostgreSQL DSNs
	_ "github.com/svckit/svckit/store/sqlite"   // and SQLite files
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/store"
)

// EnvDSN names the environment variable that holds the test server's DSN.
const EnvDSN = "SVCKIT_TEST_POSTGRES_DSN"

// Postgres opens a store in a new schema named prefix_<nanoseconds> and closes and drops
// it at the end of the test. It skips the test when EnvDSN is not set.
func Postgres(t testing.TB, prefix string) *store.Store {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Skip(EnvDSN + " is not set")
	}
	ctx := context.Background()
	admin, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	if _, err := admin.DB().ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if a, err := store.Open(context.Background(), dsn); err == nil {
			_, _ = a.DB().Exec("DROP SCHEMA " + schema + " CASCADE")
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
