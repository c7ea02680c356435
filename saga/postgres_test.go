//go:build integration

package saga_test

import (
	"testing"

	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/store/storetest"
)

// postgresStore opens a fresh schema on the test PostgreSQL server (storetest.EnvDSN),
// skipping the test when none is set.
func postgresStore(t testing.TB) *store.Store { return storetest.Postgres(t, "saga") }

func TestPostgres(t *testing.T) { suite(t, postgresStore) }

// BenchmarkSaga3StepsPostgres is BenchmarkSaga3Steps on PostgreSQL.
func BenchmarkSaga3StepsPostgres(b *testing.B) { benchSaga(b, postgresStore(b)) }
