//go:build integration

package idempotency_test

import (
	"context"
	"testing"

	"github.com/svckit/svckit/idempotency"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/store/storetest"
)

// postgresStore opens a fresh schema on the test PostgreSQL server (storetest.EnvDSN),
// skipping the test when none is set.
func postgresStore(t testing.TB) *store.Store { return storetest.Postgres(t, "idempotency") }

func TestPostgres(t *testing.T) {
	open := func(t *testing.T) *idempotency.SQL {
		s, err := idempotency.NewSQL(context.Background(), postgresStore(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("Store", func(t *testing.T) { testStore(t, open(t)) })
	t.Run("ConcurrentBegin", func(t *testing.T) { testConcurrentBegin(t, open(t)) })
	t.Run("MiddlewareHTTP", func(t *testing.T) { testMiddlewareHTTP(t, open(t)) })
	t.Run("Once", func(t *testing.T) { testOnce(t, open(t)) })
}
