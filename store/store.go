// Package store gives each svckit service its own SQL database, opened from a DSN:
//
//	sqlite:PATH          a SQLite file (the default; modernc.org/sqlite, pure Go), in WAL mode
//	                     with a busy timeout, synchronous=NORMAL ([WithSync] changes it) and
//	                     foreign keys on
//	postgres://…         PostgreSQL through pgx (postgresql:// works too)
//	sqlite::memory:      an in-memory SQLite database shared by the Store's pools, for tests
//
// A [Store] wraps *sql.DB with the [Dialect] that hides the few differences other packages
// need (placeholders, blob types, error classification). [Store.Migrate] applies embedded,
// versioned SQL migrations with checksums at start; [Store.InTx] runs a function in a
// transaction, retrying it when the database reports a transient conflict, and runs
// [Store.AfterCommit] hooks once the transaction has committed.
//
// For SQLite the Store keeps two pools on one file: a single writer connection, which
// serializes writers in Go instead of making them fight over SQLite's lock, and a pool of
// read-only connections for queries. Concurrent InTx calls share the writer's commits
// (group commit), which is what makes many small transactions fast; a lone caller's
// transaction commits in its own goroutine, with no hand-off to a writer goroutine. An
// InTx call that races Close either commits or fails with a "store: closed" error; it
// does not wait for ever. Each SQLite
// connection, the writer's and each reader's, keeps the statements its Exec and Query
// calls run prepared (at most 128 per connection, one evicted past that), so the same SQL
// text is parsed once per connection, not at every call, and keeps those that begin and
// end its transactions (BEGIN IMMEDIATE on the writer, COMMIT, ROLLBACK); SQLite prepares a kept statement
// again by itself after a schema change, and a statement whose rows are still open is not
// run again (the second call prepares its own) nor finalized until they are closed. A
// statement on the SQLite writer fails at once when its context has ended, and once it
// has started runs to its end without watching the context (the driver would watch it
// from a goroutine per statement; the writer's statements are short and wait for no lock
// of this process, and at most the busy timeout for another's); queries on the readers
// end when their context does. On PostgreSQL pgx keeps statements prepared by itself. Each service has its own DSN, so no
// service reaches another's data.
//
// Replicas of a service may open one SQLite file together (`svckit dev` starts them at
// once). Open waits up to the busy timeout while another process switches a new file to
// WAL, which SQLite would otherwise report as SQLITE_BUSY at once, and Migrate lets one
// replica apply each migration while the others find it applied.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Option configures Open.
type Option func(*options)

type options struct {
	busyTimeout time.Duration
	maxReaders  int
	maxOpen     int
	retries     int
	sync        Sync
}

// WithBusyTimeout sets how long a SQLite connection waits for a lock held by another
// connection or process before it fails with SQLITE_BUSY; default 5s.
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// WithMaxReaders sets the number of SQLite read connections; default max(4, GOMAXPROCS).
func WithMaxReaders(n int) Option { return func(o *options) { o.maxReaders = n } }

// WithMaxOpenConns sets the PostgreSQL pool size; default 16.
func WithMaxOpenConns(n int) Option { return func(o *options) { o.maxOpen = n } }

// WithTxRetries sets how many times InTx retries a transaction that failed with a
// transient conflict (SQLITE_BUSY, serialization failure, deadlock); default 10.
func WithTxRetries(n int) Option { return func(o *options) { o.retries = n } }

// Sync is SQLite's synchronous setting: when a commit waits for the disk. In WAL mode:
//
//	NORMAL  (the default) a commit is written to the WAL but not synced; the WAL is synced
//	        at checkpoints. A process crash loses nothing committed; an OS crash or power
//	        loss can lose the last transactions committed before it (never corrupting the
//	        database).
//	FULL    every commit syncs the WAL before it returns: committed transactions survive an
//	        OS crash and power loss too.
//	EXTRA   FULL, and the directory is synced after a journal file is deleted (in WAL
//	        mode little more than FULL).
//	OFF     no sync at all: a process crash loses nothing committed, an OS crash can lose
//	        recent commits and, outside WAL mode, corrupt the file.
//
// PostgreSQL ignores it: its durability is the server's synchronous_commit (on by
// default: a commit returns after its WAL is flushed to disk).
type Sync string

// The values of [Sync].
const (
	SyncNormal Sync = "NORMAL"
	SyncFull   Sync = "FULL"
	SyncExtra  Sync = "EXTRA"
	SyncOff    Sync = "OFF"
)

// ParseSync returns the [Sync] value s names, in any case; empty is [SyncNormal].
func ParseSync(s string) (Sync, error) {
	switch v := Sync(strings.ToUpper(strings.TrimSpace(s))); v {
	case "":
		return SyncNormal, nil
	case SyncNormal, SyncFull, SyncExtra, SyncOff:
		return v, nil
	}
	return "", fmt.Errorf("store: synchronous %q: must be NORMAL, FULL, EXTRA or OFF", s)
}

// WithSync sets SQLite's synchronous setting (see [Sync]); default NORMAL. The value is
// taken in any case; Open fails on one that is not NORMAL, FULL, EXTRA or OFF.
func WithSync(s Sync) Option { return func(o *options) { o.sync = s } }

// Store is one service's database.
type Store struct {
	dialect Dialect
	dsn     string
	write   *sql.DB
	read    *sql.DB
	retries int

	mu      sync.Mutex
	current map[*sql.Tx]*txReq // the request whose function runs in tx now

	// SQLite's group commit (see grouped): the transactions waiting for a group, whether
	// a goroutine leads (commits groups), Close's wait for the last leader (idle), and
	// the leader's slices.
	sqlite  bool
	qmu     sync.Mutex
	queue   []*txReq
	closing bool
	leading bool
	idle    chan struct{}
	batch   []*txReq
	live    []*txReq // commitGroup's
}

// Open opens the database named by dsn and checks that it answers. A DSN without a
// scheme is taken as a SQLite path.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{busyTimeout: 5 * time.Second, maxReaders: max(4, runtime.GOMAXPROCS(0)), maxOpen: 16, retries: 10}
	for _, fn := range opts {
		fn(&o)
	}
	mode, err := ParseSync(string(o.sync))
	if err != nil {
		return nil, err
	}
	o.sync = mode
	s := &Store{dsn: dsn, retries: o.retries, current: make(map[*sql.Tx]*txReq)}
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if err := needDriver("pgx", "postgres"); err != nil {
			return nil, err
		}
		db, err := openTraced("pgx", dsn, Postgres)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		db.SetMaxOpenConns(o.maxOpen)
		db.SetMaxIdleConns(o.maxOpen)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s.dialect, s.write, s.read = Postgres, db, db
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "sqlite:")
		if path == "" {
			return nil, errors.New("store: empty SQLite path")
		}
		if err := needDriver("sqlite", "sqlite"); err != nil {
			return nil, err
		}
		if path != ":memory:" {
			if dir := filepath.Dir(path); dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, fmt.Errorf("store: %w", err)
				}
			}
		}
		w, r, err := openSQLite(path, o)
		if err != nil {
			return nil, err
		}
		s.dialect, s.write, s.read = SQLite, w, r
		s.sqlite, s.idle = true, make(chan struct{}, 1)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// needDriver reports a missing database/sql driver as the import that adds it. Package
// store links no driver itself, so a service without a store, or with only one engine,
// does not carry the others.
func needDriver(driver, pkg string) error {
	if slices.Contains(sql.Drivers(), driver) {
		return nil
	}
	return fmt.Errorf("store: no %s driver in this program: import _ \"github.com/svckit/svckit/store/%s\" in its main package", pkg, pkg)
}

func openSQLite(path string, o options) (write, read *sql.DB, err error) {
	pragmas := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append([]string{
			fmt.Sprintf("busy_timeout(%d)", o.busyTimeout.Milliseconds()),
			"synchronous(" + string(o.sync) + ")",
			"foreign_keys(1)",
		}, extra...) {
			q.Add("_pragma", p)
		}
		return q.Encode()
	}
	name := "file:" + path
	if path == ":memory:" {
		// One shared in-memory database for both pools.
		name = "file:svckit-mem-" + fmt.Sprint(time.Now().UnixNano()) + "?mode=memory&cache=shared"
	} else {
		name += "?"
	}
	sep := "&"
	if strings.HasSuffix(name, "?") {
		sep = ""
	}
	// The writer switches the file to WAL; the mode is kept in the file, so the readers,
	// which open after it, need not (and a read-only connection could not).
	write, err = openSQLiteKept(name+sep+pragmas("journal_mode(WAL)")+"&_txlock=immediate", true)
	if err != nil {
		return nil, nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// Make the file and switch it to WAL on the writer before readers open it.
	if err := firstConnect(write, o.busyTimeout); err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	read, err = openSQLiteKept(name+sep+pragmas("query_only(1)"), false)
	if err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	read.SetMaxOpenConns(o.maxReaders)
	read.SetMaxIdleConns(o.maxReaders)
	read.SetConnMaxIdleTime(0)
	return write, read, nil
}

// firstConnect opens the writer's connection. Switching a new file to WAL needs the
// file's exclusive lock, and when two processes (replicas started together) both try it,
// SQLite fails one of them with SQLITE_BUSY at once instead of waiting for the busy
// timeout, since waiting could deadlock. The switch is tried again, after a short, random,
// growing pause, until busyTimeout has passed: by then the other process has made the
// file WAL, and the switch is a no-op.
func firstConnect(db *sql.DB, busyTimeout time.Duration) error {
	deadline := time.Now().Add(busyTimeout)
	pause := 2 * time.Millisecond
	for {
		_, err := db.Exec("SELECT 1")
		if err == nil || !SQLite.IsRetryable(err) || time.Now().Add(pause).After(deadline) {
			return err
		}
		time.Sleep(pause/2 + rand.N(pause))
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Dialect returns the database's dialect.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB returns the pool for writes and transactions. For SQLite it has one connection, so a
// caller that holds a transaction blocks other writers until it ends.
func (s *Store) DB() *sql.DB { return s.write }

// ReadDB returns the pool for read-only queries outside transactions. For PostgreSQL it is
// the same pool as DB.
func (s *Store) ReadDB() *sql.DB { return s.read }

// Rebind rewrites the ? placeholders of query for the store's dialect.
func (s *Store) Rebind(query string) string { return s.dialect.Rebind(query) }

// Ping checks that the database answers; use it as a readiness check.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.dialect, err)
	}
	if s.read != s.write {
		if err := s.read.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping %s: %w", s.dialect, err)
		}
	}
	return nil
}

// Close closes the pools. Transactions must have ended.
func (s *Store) Close() error {
	if s.sqlite {
		s.closeGroup()
	}
	err := s.write.Close()
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// InTx runs fn in a transaction on the write pool and commits it if fn returns nil, or
// rolls it back. When the database reports a transient conflict (SQLITE_BUSY or
// SQLITE_LOCKED, PostgreSQL serialization failure or deadlock), from fn or from the
// commit, the whole transaction is run again after a short, growing pause, so fn must not
// have effects outside tx. Hooks that fn registers with AfterCommit run after the commit.
//
// On SQLite, transactions from concurrent callers are committed in groups (group
// commit): the waiting functions run one after another in one SQLite transaction, which
// commits once, and each caller returns when its group has committed. A caller that
// finds no commit under way commits in its own goroutine, so a caller alone on an idle
// store needs no hand-off to another goroutine and back; while others wait, a writer
// goroutine commits their groups one after another until none waits. When a function fails, the group is rolled back and the others run again
// without it, so a failure affects no other caller. The result is the same as running
// the functions one after another, while a commit's cost is shared by the group. A
// function that panics makes InTx panic in the caller's goroutine.
func (s *Store) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.InTxOptions(ctx, nil, fn)
}

// InTxOptions is InTx with transaction options, such as an isolation level or read-only.
// On SQLite, whose transactions are always serializable, the isolation level is ignored
// and a read-only transaction runs on the read pool.
func (s *Store) InTxOptions(ctx context.Context, txOpts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	pause := time.Millisecond
	for attempt := 0; ; attempt++ {
		var err error
		switch {
		case s.dialect == SQLite && txOpts != nil && txOpts.ReadOnly:
			err = s.inTx(ctx, s.read, &sql.TxOptions{ReadOnly: true}, fn)
		case s.dialect == SQLite:
			err = s.grouped(ctx, fn)
		default:
			err = s.inTx(ctx, s.write, txOpts, fn)
		}
		if err == nil || attempt >= s.retries || !s.dialect.IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(pause*2, 200*time.Millisecond)
	}
}

func (s *Store) inTx(ctx context.Context, db *sql.DB, txOpts *sql.TxOptions, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, txOpts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	req := &txReq{}
	s.mu.Lock()
	s.current[tx] = req
	s.mu.Unlock()
	committed := false
	defer func() {
		s.mu.Lock()
		delete(s.current, tx)
		s.mu.Unlock()
		if !committed {
			_ = tx.Rollback()
			return
		}
		for _, h := range req.hooks {
			h()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	committed = true
	return nil
}

// AfterCommit registers fn to run after tx commits; it is not run if tx rolls back. It
// reports false, and does nothing, when tx was not started by this Store's InTx or the
// function InTx runs has returned.
func (s *Store) AfterCommit(tx *sql.Tx, fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.current[tx]
	if !ok || req == nil {
		return false
	}
	req.hooks = append(req.hooks, fn)
	return true
}
