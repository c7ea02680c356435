//go:build integration

package schedule_test

import (
	"context"
	"testing"

	"github.com/svckit/svckit/schedule"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/store/storetest"
)

// postgresStore opens a fresh schema on the test PostgreSQL server (storetest.EnvDSN),
// skipping the test when none is set.
func postgresStore(t testing.TB) *store.Store { return storetest.Postgres(t, "schedule") }

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
