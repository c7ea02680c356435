//go:build integration

package outbox_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/store"
)

func init() { crashKills = 40 }

// TestRelayPostgres runs the relay test on PostgreSQL (SVCKIT_TEST_POSTGRES_DSN), in a
// schema of its own.
func TestRelayPostgres(t *testing.T) {
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
	schema := fmt.Sprintf("outbox_%d", time.Now().UnixNano())
	if _, err := admin.DB().ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	defer admin.DB().ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := store.Open(ctx, dsn+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testRelay(t, st)
}
