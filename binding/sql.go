package binding

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// sqlOutput is the sql output.
type sqlOutput struct {
	name    string
	st      *store.Store
	stmt    namedStatement
	sources map[string]paramSource
	query   bool
	read    bool // a SELECT: run on the read pool
	timeout time.Duration
}

// paramSource says where a parameter's value comes from.
type paramSource struct {
	kind string   // "json", "meta" or "data"
	path []string // json: the field path; meta: the key
}

var (
	returningWord = regexp.MustCompile(`(?i)\bRETURNING\b`)
	firstWord     = regexp.MustCompile(`(?s)^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*([A-Za-z]+)`)
)

func newSQL(ctx context.Context, name string, c *SQLConfig, d *Deps) (*sqlOutput, func() error, error) {
	o := &sqlOutput{name: name, st: d.Store, timeout: c.Timeout, sources: map[string]paramSource{}}
	if c.Statement == "" {
		return nil, nil, required("statement")
	}
	if o.timeout == 0 {
		o.timeout = 10 * time.Second
	}
	if o.timeout < 0 {
		return nil, nil, invalid("timeout", "must not be negative")
	}
	var closer func() error
	if c.DSN != "" {
		dsn := c.DSN
		if isSecretRef(dsn) { // a DSN with a password belongs in a secret
			src, err := resolveSecret(ctx, dsn, d)
			if err != nil {
				return nil, nil, fieldErr("dsn", err)
			}
			v, err := src(ctx)
			if err != nil {
				return nil, nil, fieldErr("dsn", err)
			}
			dsn = v.Reveal()
		}
		st, err := store.Open(ctx, dsn)
		if err != nil {
			return nil, nil, fieldErr("dsn", err)
		}
		o.st, closer = st, st.Close
	}
	fail := func(err error) (*sqlOutput, func() error, error) {
		if closer != nil {
			closer()
		}
		return nil, nil, err
	}
	if o.st == nil {
		return fail(invalid("dsn", "not set, and Deps.Store is not set either"))
	}
	stmt, err := parseNamed(c.Statement, o.st.Dialect())
	if err != nil {
		return fail(fieldErr("statement", err))
	}
	o.stmt = stmt
	for p, src := range c.Params {
		if !slices.Contains(stmt.names, p) {
			return fail(invalid("params."+p, "the statement has no parameter :%s", p))
		}
		ps, err := parseSource(src)
		if err != nil {
			return fail(fieldErr("params."+p, err))
		}
		o.sources[p] = ps
	}
	for _, p := range stmt.names {
		if _, ok := o.sources[p]; !ok {
			o.sources[p] = paramSource{kind: "json", path: []string{p}}
		}
	}
	word := ""
	if m := firstWord.FindStringSubmatch(c.Statement); m != nil {
		word = strings.ToUpper(m[1])
	}
	switch c.Mode {
	case "":
		o.query = word == "SELECT" || word == "WITH" || returningWord.MatchString(c.Statement)
	case "query":
		o.query = true
	case "exec":
	default:
		return fail(invalid("mode", "%q: want exec or query", c.Mode))
	}
	o.read = o.query && word == "SELECT"
	return o, closer, nil
}

func parseSource(s string) (paramSource, error) {
	kind, arg, _ := strings.Cut(s, ":")
	switch {
	case kind == "data" && arg == "":
		return paramSource{kind: "data"}, nil
	case kind == "meta" && arg != "":
		return paramSource{kind: "meta", path: []string{arg}}, nil
	case kind == "json" && arg != "" && !slices.Contains(strings.Split(arg, "."), ""):
		return paramSource{kind: "json", path: strings.Split(arg, ".")}, nil
	}
	return paramSource{}, fmt.Errorf("%q: want json:PATH, meta:KEY or data", s)
}

// Name implements Output.
func (o *sqlOutput) Name() string { return o.name }

// Invoke implements Output: it binds the parameters from r and runs the statement, in a
// transaction unless it is a SELECT. Exec returns "rows_affected" in the metadata; query
// returns the rows as a JSON array of objects and "rows". A missing parameter is an
// InvalidArgument error naming it; a unique violation is AlreadyExists.
func (o *sqlOutput) Invoke(ctx context.Context, r Request) (Response, error) {
	args, err := o.bind(r)
	if err != nil {
		return Response{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var resp Response
	switch {
	case o.read:
		rows, err := o.st.ReadDB().QueryContext(ctx, o.stmt.sql, args...)
		if err != nil {
			return Response{}, o.dbError(ctx, err)
		}
		resp, err = rowsJSON(rows)
		if err != nil {
			return Response{}, o.dbError(ctx, err)
		}
	case o.query:
		err = o.st.InTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, o.stmt.sql, args...)
			if err != nil {
				return err
			}
			resp, err = rowsJSON(rows)
			return err
		})
	default:
		err = o.st.InTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, o.stmt.sql, args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			resp = Response{Metadata: map[string]string{"rows_affected": strconv.FormatInt(n, 10)}}
			return nil
		})
	}
	if err != nil {
		return Response{}, o.dbError(ctx, err)
	}
	return resp, nil
}

// bind returns the statement's arguments, read from r.
func (o *sqlOutput) bind(r Request) ([]any, error) {
	var obj map[string]any
	args := make([]any, len(o.stmt.names))
	for i, p := range o.stmt.names {
		src := o.sources[p]
		switch src.kind {
		case "data":
			args[i] = string(r.Data)
		case "meta":
			v, ok := r.Metadata[src.path[0]]
			if !ok {
				return nil, svcerr.Errorf(svcerr.InvalidArgument, "binding %s: parameter :%s: metadata %q is missing", o.name, p, src.path[0])
			}
			args[i] = v
		case "json":
			if obj == nil {
				d := json.NewDecoder(bytes.NewReader(r.Data))
				d.UseNumber()
				if err := d.Decode(&obj); err != nil || obj == nil {
					return nil, svcerr.Errorf(svcerr.InvalidArgument, "binding %s: parameter :%s: the request data is not a JSON object", o.name, p)
				}
			}
			v, err := lookup(obj, src.path)
			if err != nil {
				return nil, svcerr.Errorf(svcerr.InvalidArgument, "binding %s: parameter :%s: %v", o.name, p, err)
			}
			args[i] = v
		}
	}
	return args, nil
}

// lookup returns the value at path in obj as a SQL argument: strings, integers, floats,
// booleans and NULL as themselves, objects and arrays as JSON text.
func lookup(obj map[string]any, path []string) (any, error) {
	var cur any = obj
	for i, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("field %q is not an object", strings.Join(path[:i], "."))
		}
		if cur, ok = m[k]; !ok {
			return nil, fmt.Errorf("the request data has no field %q", strings.Join(path[:i+1], "."))
		}
	}
	switch v := cur.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", strings.Join(path, "."), err)
		}
		return f, nil
	case map[string]any, []any:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return cur, nil
}

// rowsJSON reads rows into a JSON array of objects keyed by column name.
func rowsJSON(rows *sql.Rows) (Response, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Response{}, err
	}
	out := []map[string]any{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return Response{}, err
		}
		row := make(map[string]any, len(cols))
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok && utf8.Valid(b) {
				vals[i] = string(b)
			}
			row[c] = vals[i]
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return Response{}, err
	}
	data, err := json.Marshal(out)
	if err != nil {
		return Response{}, err
	}
	return Response{Data: data, Metadata: map[string]string{"rows": strconv.Itoa(len(out))}}, nil
}

// dbError classifies a database error.
func (o *sqlOutput) dbError(ctx context.Context, err error) error {
	var se *svcerr.Error
	if errors.As(err, &se) {
		return err
	}
	d := o.st.Dialect()
	kind := svcerr.Internal
	switch {
	case ctx.Err() != nil:
		kind = svcerr.KindOf(ctx.Err())
	case d.IsUniqueViolation(err):
		kind = svcerr.AlreadyExists
	case d.IsRetryable(err):
		kind = svcerr.Unavailable
	}
	return svcerr.Wrap(kind, "binding "+o.name+": statement failed", err)
}
