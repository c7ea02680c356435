package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TraceScope is the instrumentation scope of the store's spans.
const TraceScope = "github.com/svckit/svckit/store"

// Tracing: every statement a Store's pools run — Exec, Query, QueryRow and prepared
// statements, in transactions or not — is a client span "KIND table" (for example
// "SELECT orders", "INSERT outbox") when its context carries a recording span, a child of
// that span, made by that span's TracerProvider. Its attributes are db.system.name and
// db.system ("sqlite" or "postgresql"), db.operation.name (the statement's first keyword:
// SELECT, INSERT, UPDATE, DELETE, WITH, …) and db.collection.name when a table follows
// FROM, INTO or UPDATE. Never the parameters, nor the statement's text. A failed statement
// records its error and the status Error. The span ends when the statement returns, before
// a query's rows are read. A statement whose context carries no recording span (the
// relay's polling, a service without tracing) makes no span and builds no attributes: one
// context lookup is all it costs.

// openTraced opens a pool of driver name on dsn whose statements make spans as described
// above.
func openTraced(name, dsn string, d Dialect) (*sql.DB, error) {
	db, err := sql.Open(name, dsn)
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
	sys := "sqlite"
	if d == Postgres {
		sys = "postgresql"
	}
	return sql.OpenDB(&tracedConnector{Connector: c, sys: sys}), nil
}

// dsnConnector is the connector of a driver without driver.DriverContext.
type dsnConnector struct {
	drv driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.drv }

type tracedConnector struct {
	driver.Connector
	sys string
}

func (c *tracedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &tracedConn{Conn: conn, sys: c.sys}, nil
}

// Close closes the wrapped connector if it has resources of its own (sql.DB.Close calls it).
func (c *tracedConnector) Close() error {
	if cl, ok := c.Connector.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// tracedConn passes everything to the driver's connection and adds the spans. It
// implements every optional interface the two drivers implement, each falling back to
// what database/sql does when the wrapped connection lacks it.
type tracedConn struct {
	driver.Conn
	sys string
}

var (
	_ driver.ExecerContext      = (*tracedConn)(nil)
	_ driver.QueryerContext     = (*tracedConn)(nil)
	_ driver.ConnPrepareContext = (*tracedConn)(nil)
	_ driver.ConnBeginTx        = (*tracedConn)(nil)
	_ driver.Pinger             = (*tracedConn)(nil)
	_ driver.SessionResetter    = (*tracedConn)(nil)
	_ driver.Validator          = (*tracedConn)(nil)
	_ driver.NamedValueChecker  = (*tracedConn)(nil)
)

func (c *tracedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	ctx, span := startSpan(ctx, c.sys, query)
	res, err := ec.ExecContext(ctx, query, args)
	endSpan(span, err)
	return res, err
}

func (c *tracedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	ctx, span := startSpan(ctx, c.sys, query)
	rows, err := qc.QueryContext(ctx, query, args)
	endSpan(span, err)
	return rows, err
}

func (c *tracedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var st driver.Stmt
	var err error
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		st, err = pc.PrepareContext(ctx, query)
	} else {
		st, err = c.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &tracedStmt{Stmt: st, query: query, sys: c.sys}, nil
}

func (c *tracedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *tracedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if bt, ok := c.Conn.(driver.ConnBeginTx); ok {
		return bt.BeginTx(ctx, opts)
	}
	if opts.ReadOnly || opts.Isolation != 0 {
		return nil, errors.New("store: the driver supports no transaction options")
	}
	return c.Conn.Begin() //nolint:staticcheck // the fallback database/sql uses too
}

func (c *tracedConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *tracedConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *tracedConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *tracedConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip // database/sql's default conversion
}

// tracedStmt is a prepared statement: each execution is a span.
type tracedStmt struct {
	driver.Stmt
	query string
	sys   string
}

var (
	_ driver.StmtExecContext   = (*tracedStmt)(nil)
	_ driver.StmtQueryContext  = (*tracedStmt)(nil)
	_ driver.NamedValueChecker = (*tracedStmt)(nil)
)

func (s *tracedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	ctx, span := startSpan(ctx, s.sys, s.query)
	var res driver.Result
	var err error
	if ec, ok := s.Stmt.(driver.StmtExecContext); ok {
		res, err = ec.ExecContext(ctx, args)
	} else {
		var vs []driver.Value
		if vs, err = values(args); err == nil {
			res, err = s.Stmt.Exec(vs) //nolint:staticcheck // the fallback database/sql uses too
		}
	}
	endSpan(span, err)
	return res, err
}

func (s *tracedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	ctx, span := startSpan(ctx, s.sys, s.query)
	var rows driver.Rows
	var err error
	if qc, ok := s.Stmt.(driver.StmtQueryContext); ok {
		rows, err = qc.QueryContext(ctx, args)
	} else {
		var vs []driver.Value
		if vs, err = values(args); err == nil {
			rows, err = s.Stmt.Query(vs) //nolint:staticcheck // the fallback database/sql uses too
		}
	}
	endSpan(span, err)
	return rows, err
}

func (s *tracedStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func values(args []driver.NamedValue) ([]driver.Value, error) {
	vs := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, fmt.Errorf("store: the driver does not support the named parameter %s", a.Name)
		}
		vs[i] = a.Value
	}
	return vs, nil
}

// startSpan starts the span of one statement when ctx carries a recording span; it
// returns a nil span, and builds nothing, otherwise.
func startSpan(ctx context.Context, sys, query string) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, nil
	}
	op, table := Statement(query)
	name := op
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs,
		attribute.String("db.system.name", sys),
		attribute.String("db.system", sys),
		attribute.String("db.operation.name", op))
	if table != "" {
		name += " " + table
		attrs = append(attrs, attribute.String("db.collection.name", table))
	}
	return parent.TracerProvider().Tracer(TraceScope).Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && !errors.Is(err, driver.ErrSkip) {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// maxIdent bounds the table name Statement reports.
const maxIdent = 64

// Statement returns the kind of the SQL statement query — its first keyword in upper case
// (SELECT, INSERT, UPDATE, DELETE, WITH, CREATE, BEGIN, …), after leading white space and
// comments; "SQL" when it starts with something else — and the table it reads or writes
// when a plain name follows its first FROM, INTO or UPDATE keyword (quotes removed, at most
// 64 characters), or "". It reads no literal and returns no part of one: what it returns
// is safe to show in a trace.
func Statement(query string) (kind, table string) {
	q := skipSpace(query)
	word, rest := keyword(q)
	if word == "" {
		return "SQL", ""
	}
	kind = strings.ToUpper(word)
	var after string
	switch kind {
	case "SELECT", "DELETE", "WITH":
		after = "FROM"
	case "INSERT", "REPLACE":
		after = "INTO"
	case "UPDATE":
		return kind, ident(skipSpace(rest))
	default:
		return kind, ""
	}
	// Find the keyword outside string literals and parentheses (a WITH's or a subquery's
	// own FROM is not the statement's).
	depth := 0
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(rest[i+1:], '\'')
			if j < 0 {
				return kind, ""
			}
			i += j + 1
		case c == '(':
			depth++
		case c == ')':
			depth--
		case isIdent(c):
			j := i + 1
			for j < len(rest) && isIdent(rest[j]) {
				j++
			}
			if depth == 0 && strings.EqualFold(rest[i:j], after) {
				return kind, ident(skipSpace(rest[j:]))
			}
			i = j - 1
		}
	}
	return kind, ""
}

// skipSpace skips white space and SQL comments.
func skipSpace(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n\f")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[i+4:]
		default:
			return s
		}
	}
}

// keyword returns the leading run of letters of s, and the rest.
func keyword(s string) (word, rest string) {
	i := 0
	for i < len(s) && isLetter(s[i]) {
		i++
	}
	if i > 16 || (i < len(s) && isIdent(s[i])) {
		return "", s
	}
	return s[:i], s[i:]
}

// ident returns the (possibly schema-qualified, possibly double-quoted) name at the start
// of s, or "" when none is there or it is longer than maxIdent.
func ident(s string) string {
	var b strings.Builder
	for {
		quote := byte(0)
		if s != "" && (s[0] == '"' || s[0] == '`') {
			quote, s = s[0], s[1:]
		}
		i := 0
		for i < len(s) && isIdent(s[i]) {
			i++
		}
		if i == 0 || !isLetter(s[0]) && s[0] != '_' {
			return ""
		}
		b.WriteString(s[:i])
		s = s[i:]
		if quote != 0 {
			if s == "" || s[0] != quote {
				return "" // a quoted name with other characters
			}
			s = s[1:]
		}
		if b.Len() > maxIdent {
			return ""
		}
		if s == "" || s[0] != '.' {
			return b.String()
		}
		b.WriteByte('.')
		s = s[1:]
	}
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdent(c byte) bool  { return isLetter(c) || c >= '0' && c <= '9' || c == '_' }
