// Package sqlite links the SQLite engine (modernc.org/sqlite, pure Go, no cgo) into a
// program, for package store's sqlite: DSNs. Import it for its side effect in a service's
// main package:
//
//	import _ "github.com/svckit/svckit/store/sqlite"
//
// Package store links no engine itself, so a service without a store carries none, and a
// service that runs only on PostgreSQL need not carry SQLite. A store.Open of a sqlite:
// DSN in a program without this package fails with an error that names this import.
package sqlite

import (
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)
