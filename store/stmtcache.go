package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"reflect"
	"strings"
)

// stmtCacheSize bounds the statements one SQLite connection keeps prepared.
const stmtCacheSize = 128

// openSQLiteKept opens a SQLite pool (the writer or the readers) like openTraced (its
// statements make spans), whose connections keep the statements that Exec and Query
// calls run prepared: a transaction's tx.ExecContext(ctx, "INSERT …", …) or
// tx.QueryRowContext(ctx, "SELECT …", …) parses its SQL once per connection instead of at
// every call. SQLite re-prepares a kept statement by itself after a schema change
// (sqlite3_prepare_v2), and clears its parameters after each execution; rows read from a
// kept statement reset it when they are closed. On the writer's pool (writer), a
// statement whose context has ended fails before it starts, and one that has started
// runs to its end: see cachingConn.stmtCtx.
func openSQLiteKept(dsn string, writer bool) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	drv := db.Driver()
	_ = db.Close()
	var c driver.Connector = dsnConnector{drv: drv, dsn: dsn}
	if dc, ok := drv.(driver.DriverContext); ok {
		if c, err = dc.OpenConnector(dsn); err != nil {
			return nil, err
		}
	}
	return sql.OpenDB(&tracedConnector{Connector: cachingConnector{Connector: c, begin: beginSQL(dsn), writer: writer}, sys: "sqlite"}), nil
}

// beginSQL returns the statement that begins a read-write transaction on a connection
// opened with dsn: BEGIN, or BEGIN IMMEDIATE (or DEFERRED, EXCLUSIVE) when dsn asks for
// it with _txlock, as the driver does.
func beginSQL(dsn string) string {
	_, q, _ := strings.Cut(dsn, "?")
	for p := range strings.SplitSeq(q, "&") {
		if mode, ok := strings.CutPrefix(p, "_txlock="); ok {
			switch mode = strings.ToUpper(mode); mode {
			case "DEFERRED", "IMMEDIATE", "EXCLUSIVE":
				return "BEGIN " + mode
			}
		}
	}
	return "BEGIN"
}

// cachingConnector makes connections that keep their statements prepared.
type cachingConnector struct {
	driver.Connector
	begin  string // see beginSQL
	writer bool   // the writer's pool: see cachingConn.stmtCtx
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &cachingConn{Conn: conn, stmts: make(map[string]*keptStmt), begin: c.begin, writer: c.writer}, nil
}

// Close closes the wrapped connector if it has resources of its own.
func (c cachingConnector) Close() error {
	if cl, ok := c.Connector.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// keptStmt is a statement a connection keeps prepared. busy: rows read from it are open
// (SQLite steps the statement itself as they are read), so it can neither run again nor
// be finalized until they are closed; evicted: it left the cache while busy, and is
// finalized when its rows are closed.
type keptStmt struct {
	st      driver.Stmt
	busy    bool
	evicted bool
}

// cachingConn runs ExecContext and QueryContext through statements it keeps, at most
// stmtCacheSize of them, and passes everything else to the driver's connection.
// database/sql uses a connection from one goroutine at a time, so the map needs no lock.
// A statement whose rows are still open is not run again: a second query of the same SQL
// on the connection before the first one's rows are closed is prepared for that call.
type cachingConn struct {
	driver.Conn
	stmts map[string]*keptStmt

	// begin begins a read-write transaction (see beginSQL); txStmts keeps the statements
	// that begin and end transactions, by their text, apart from stmts, so none is
	// evicted.
	begin   string
	txStmts map[string]driver.StmtExecContext
	// writer: the connection is the writer's (see stmtCtx).
	writer bool

	// prepared and reused count the statements prepared to be kept and the calls that
	// ran a kept one (for tests).
	prepared, reused int
}

var (
	_ driver.ExecerContext      = (*cachingConn)(nil)
	_ driver.QueryerContext     = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
	_ driver.NamedValueChecker  = (*cachingConn)(nil)
)

// kept returns the kept statement for query, preparing and keeping it if there is none;
// nil (and no error) when query must run without one: its statement is busy, or the
// driver's statement cannot run with a context.
func (c *cachingConn) kept(ctx context.Context, query string) (*keptStmt, error) {
	if k, ok := c.stmts[query]; ok {
		if k.busy {
			return nil, nil
		}
		c.reused++
		return k, nil
	}
	st, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	_, ec := st.(driver.StmtExecContext)
	_, qc := st.(driver.StmtQueryContext)
	if !ec || !qc {
		_ = st.Close()
		return nil, nil
	}
	if len(c.stmts) >= stmtCacheSize {
		for q, old := range c.stmts { // any one: the map's order is random
			delete(c.stmts, q)
			if old.busy {
				old.evicted = true
			} else {
				_ = old.st.Close()
			}
			break
		}
	}
	k := &keptStmt{st: st}
	c.stmts[query] = k
	c.prepared++
	return k, nil
}

// stmtCtx returns the context a statement runs with. On the writer's connection, a
// statement whose context has ended fails with the context's error before it starts, and
// one that starts runs without the context's cancellation: the driver watches a context
// that can end from a goroutine of its own for every statement, which cost the shop's
// services 1–4% of their CPU, while the writer's statements are short (rows by their
// keys, on the one connection that writes, so they wait for no lock of this process; a
// lock held by another process is waited for at most the busy timeout). A function that
// InTx runs finds its context's end at its next statement. Readers keep the context:
// a long query ends when its context does.
func (c *cachingConn) stmtCtx(ctx context.Context) (context.Context, error) {
	if !c.writer || ctx.Done() == nil {
		return ctx, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ctx, err := c.stmtCtx(ctx)
	if err != nil {
		return nil, err
	}
	k, err := c.kept(ctx, query)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return c.execDirect(ctx, query, args)
	}
	return k.st.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	ctx, err := c.stmtCtx(ctx)
	if err != nil {
		return nil, err
	}
	k, err := c.kept(ctx, query)
	if err != nil {
		return nil, err
	}
	if k == nil {
		if qc, ok := c.Conn.(driver.QueryerContext); ok {
			return qc.QueryContext(ctx, query, args)
		}
		return nil, driver.ErrSkip
	}
	rows, err := k.st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	k.busy = true
	return &keptRows{Rows: rows, k: k}, nil
}

// keptRows are rows read from a kept statement; closing them frees the statement for
// the next call (or finalizes it if it was evicted meanwhile).
type keptRows struct {
	driver.Rows
	k *keptStmt
}

func (r *keptRows) Close() error {
	err := r.Rows.Close()
	if r.k != nil {
		k := r.k
		r.k = nil
		k.busy = false
		if k.evicted {
			err = errors.Join(err, k.st.Close())
		}
	}
	return err
}

// The column-type methods pass on what the driver's rows tell, falling back to what
// database/sql assumes of rows that do not implement them.

func (r *keptRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *keptRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *keptRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *keptRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *keptRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

// execDirect runs query without keeping its statement.
func (c *cachingConn) execDirect(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if ec, ok := c.Conn.(driver.ExecerContext); ok {
		return ec.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

// BeginTx begins a transaction with a kept BEGIN statement (BEGIN IMMEDIATE on the
// writer, as its DSN asks; BEGIN for a read-only one), and the transaction ends with a
// kept COMMIT or ROLLBACK: the driver would prepare and finalize each of them at every
// transaction. Like the driver, it ignores the isolation level (SQLite's transactions are
// serializable). A connection whose driver cannot run a kept statement with a context
// begins through the driver.
func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	q := c.begin
	if opts.ReadOnly || q == "" {
		q = "BEGIN"
	}
	if _, err := c.txExec(ctx, q); err != errNotKept {
		if err != nil {
			return nil, err
		}
		return &keptTx{c: c, ctx: ctx}, nil
	}
	if bt, ok := c.Conn.(driver.ConnBeginTx); ok {
		return bt.BeginTx(ctx, opts)
	}
	return (&tracedConn{Conn: c.Conn}).BeginTx(ctx, opts)
}

// errNotKept says that the driver's statement cannot run with a context.
var errNotKept = errors.New("store: statement cannot be kept")

// txExec runs q, one of the statements that begin and end transactions, through the
// statement the connection keeps for it, preparing it the first time.
func (c *cachingConn) txExec(ctx context.Context, q string) (driver.Result, error) {
	st, ok := c.txStmts[q]
	if !ok {
		ps, err := c.PrepareContext(ctx, q)
		if err != nil {
			return nil, err
		}
		if st, ok = ps.(driver.StmtExecContext); !ok {
			_ = ps.Close()
			return nil, errNotKept
		}
		if c.txStmts == nil {
			c.txStmts = make(map[string]driver.StmtExecContext, 3)
		}
		c.txStmts[q] = st
	}
	return st.ExecContext(ctx, nil)
}

// keptTx is a transaction begun by cachingConn.BeginTx. Commit runs with the context the
// transaction began with (a wait for a lock ends when it is done), as the driver's does.
type keptTx struct {
	c   *cachingConn
	ctx context.Context
}

// Commit commits the transaction. If COMMIT fails, the transaction may still be open
// (SQLITE_BUSY, or a context that ended); it is rolled back, so that the connection goes
// back to the pool outside any transaction, and Commit returns COMMIT's error.
func (t *keptTx) Commit() error {
	_, err := t.c.txExec(t.ctx, "COMMIT")
	if err != nil {
		_, _ = t.c.txExec(context.Background(), "ROLLBACK")
	}
	return err
}

// Rollback rolls the transaction back.
func (t *keptTx) Rollback() error {
	_, err := t.c.txExec(context.Background(), "ROLLBACK")
	return err
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *cachingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// Close finalizes the kept statements and closes the connection.
func (c *cachingConn) Close() error {
	for q, st := range c.txStmts {
		_ = st.(driver.Stmt).Close()
		delete(c.txStmts, q)
	}
	for q, k := range c.stmts {
		if !k.busy {
			_ = k.st.Close()
		} else {
			k.evicted = true
		}
		delete(c.stmts, q)
	}
	return c.Conn.Close()
}
