package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"io"
)

// stmtCacheSize bounds the statements one SQLite writer connection keeps prepared.
const stmtCacheSize = 128

// openSQLiteWriter opens the SQLite write pool like openTraced (its statements make
// spans), and its connection keeps the statements that Exec calls run prepared: a
// transaction's tx.ExecContext(ctx, "INSERT …", …) parses its SQL once per connection
// instead of at every call. SQLite re-prepares a kept statement by itself after a schema
// change, and clears its parameters after each execution.
func openSQLiteWriter(dsn string) (*sql.DB, error) {
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
	return sql.OpenDB(&tracedConnector{Connector: cachingConnector{c}, sys: "sqlite"}), nil
}

// cachingConnector makes connections that keep their Exec statements prepared.
type cachingConnector struct{ driver.Connector }

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &cachingConn{Conn: conn, stmts: make(map[string]driver.Stmt)}, nil
}

// Close closes the wrapped connector if it has resources of its own.
func (c cachingConnector) Close() error {
	if cl, ok := c.Connector.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// cachingConn runs ExecContext through statements it keeps, at most stmtCacheSize of
// them, and passes everything else to the driver's connection. database/sql uses a
// connection from one goroutine at a time, so the map needs no lock.
type cachingConn struct {
	driver.Conn
	stmts map[string]driver.Stmt
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

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	st, ok := c.stmts[query]
	if !ok {
		var err error
		if st, err = c.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		ec, ok := st.(driver.StmtExecContext)
		if !ok {
			_ = st.Close()
			return c.execDirect(ctx, query, args)
		}
		if len(c.stmts) >= stmtCacheSize {
			for q, old := range c.stmts { // any one: the map's order is random
				_ = old.Close()
				delete(c.stmts, q)
				break
			}
		}
		c.stmts[query] = st
		return ec.ExecContext(ctx, args)
	}
	return st.(driver.StmtExecContext).ExecContext(ctx, args)
}

// execDirect runs query without keeping its statement.
func (c *cachingConn) execDirect(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if ec, ok := c.Conn.(driver.ExecerContext); ok {
		return ec.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if qc, ok := c.Conn.(driver.QueryerContext); ok {
		return qc.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if bt, ok := c.Conn.(driver.ConnBeginTx); ok {
		return bt.BeginTx(ctx, opts)
	}
	return (&tracedConn{Conn: c.Conn}).BeginTx(ctx, opts)
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
	for q, st := range c.stmts {
		_ = st.Close()
		delete(c.stmts, q)
	}
	return c.Conn.Close()
}
