// Package postgres links the PostgreSQL driver (github.com/jackc/pgx/v5) into a program,
// for package store's postgres:// DSNs. Import it for its side effect in a service's main
// package:
//
//	import _ "github.com/svckit/svckit/store/postgres"
//
// Package store links no engine itself; a store.Open of a postgres:// DSN in a program
// without this package fails with an error that names this import.
package postgres

import (
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)
