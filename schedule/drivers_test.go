package schedule_test

// The store engines the tests open: package store links none itself.
import (
	_ "github.com/svckit/svckit/store/postgres"
	_ "github.com/svckit/svckit/store/sqlite"
)
