//go:build integration

package store_test

import "testing"

// TestTracingPostgres is TestTracing on PostgreSQL through pgx (SVCKIT_TEST_POSTGRES_DSN).
func TestTracingPostgres(t *testing.T) { testTracing(t, postgresOpener(t), "postgresql") }
