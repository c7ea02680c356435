//go:build integration

package lock_test

import (
	"context"
	"testing"

	"github.com/svckit/svckit/lock"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/store/storetest"
)

// postgresStore opens a fresh schema on the test PostgreSQL server (storetest.EnvDSN),
// skipping the test when none is set.
func postgresStore(t testing.TB) *store.Store { return storetest.Postgres(t, "lock") }

func TestPostgres(t *testing.T) {
	suite(t, func(t *testing.T) lock.Backend {
		b, err := lock.NewSQL(context.Background(), postgresStore(t))
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
}
