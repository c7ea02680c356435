package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MigrateOption configures Migrate.
type MigrateOption func(*migrateOptions)

type migrateOptions struct {
	set string
	dir string
}

// WithSet names the set of migrations: each set has its own version sequence in
// schema_migrations, so packages such as outbox keep their schema beside the service's.
// The default set is "app".
func WithSet(name string) MigrateOption { return func(o *migrateOptions) { o.set = name } }

// WithDir reads the migrations from a directory of the file system; default ".".
func WithDir(dir string) MigrateOption { return func(o *migrateOptions) { o.dir = dir } }

// Migration is one versioned SQL file.
type Migration struct {
	Version  int
	Name     string // file name
	SQL      string
	Checksum string // hex SHA-256 of SQL
}

// Migrations reads the migrations for dialect d from fsys: files named NNN_name.sql, where
// NNN is the version (any number of digits). A file NNN_name.sqlite.sql or
// NNN_name.postgres.sql holds one dialect's variant of version NNN and is used instead of
// NNN_name.sql for that dialect. Two files for the same version and dialect are an error.
func Migrations(fsys fs.FS, dir string, d Dialect) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	type cand struct {
		file     string
		specific bool
	}
	byVersion := map[int]cand{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		base := strings.TrimSuffix(name, ".sql")
		specific := false
		for _, other := range []Dialect{SQLite, Postgres} {
			if strings.HasSuffix(base, "."+other.String()) {
				if other != d {
					base = ""
					break
				}
				specific = true
			}
		}
		if base == "" {
			continue
		}
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 0 {
			return nil, fmt.Errorf("store: migration %s: name must be NNN_name.sql", name)
		}
		if prev, ok := byVersion[v]; ok {
			if prev.specific == specific {
				return nil, fmt.Errorf("store: migrations %s and %s have the same version %d", prev.file, name, v)
			}
			if prev.specific {
				continue
			}
		}
		byVersion[v] = cand{file: name, specific: specific}
	}
	out := make([]Migration, 0, len(byVersion))
	for v, c := range byVersion {
		b, err := fs.ReadFile(fsys, path.Join(dir, c.file))
		if err != nil {
			return nil, fmt.Errorf("store: migration %s: %w", c.file, err)
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: v, Name: c.file, SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// ChecksumError reports an applied migration whose file has changed since.
type ChecksumError struct {
	Set     string // migration set
	File    string // file name
	Version int
	Applied string // checksum recorded when it was applied
	Current string // checksum of the file now
}

// Error names the file, its set and version, and both checksums.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("store: migration %s (set %s, version %d) changed after it was applied: checksum %s, applied %s",
		e.File, e.Set, e.Version, short(e.Current), short(e.Applied))
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// Migrate applies the migrations in fsys (see Migrations) that the database has not
// applied yet, in version order, each in its own transaction together with its row in
// schema_migrations (set, version, name, checksum, applied_at). It fails, naming the
// file, when an applied migration's file has changed, and applies nothing then. On
// PostgreSQL an advisory lock keeps replicas that start together from migrating at once;
// on SQLite the single writer connection does.
func (s *Store) Migrate(ctx context.Context, fsys fs.FS, opts ...MigrateOption) error {
	o := migrateOptions{set: "app", dir: "."}
	for _, fn := range opts {
		fn(&o)
	}
	migs, err := Migrations(fsys, o.dir, s.dialect)
	if err != nil {
		return err
	}
	conn, err := s.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == Postgres {
		const lockKey = 0x5356434b4954 // "SVCKIT"
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	set_name   TEXT NOT NULL,
	version    BIGINT NOT NULL,
	name       TEXT NOT NULL,
	checksum   TEXT NOT NULL,
	applied_at BIGINT NOT NULL,
	PRIMARY KEY (set_name, version))`); err != nil {
		return fmt.Errorf("store: migrate: create schema_migrations: %w", err)
	}
	applied := map[int][2]string{}
	rows, err := conn.QueryContext(ctx, s.Rebind("SELECT version, name, checksum FROM schema_migrations WHERE set_name = ?"), o.set)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for rows.Next() {
		var v int
		var name, sum string
		if err := rows.Scan(&v, &name, &sum); err != nil {
			rows.Close()
			return fmt.Errorf("store: migrate: %w", err)
		}
		applied[v] = [2]string{name, sum}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for _, m := range migs {
		if a, ok := applied[m.Version]; ok && a[1] != m.Checksum {
			return &ChecksumError{Set: o.set, File: m.Name, Version: m.Version, Applied: a[1], Current: m.Checksum}
		}
	}
	for _, m := range migs {
		if _, ok := applied[m.Version]; ok {
			continue
		}
		if err := s.applyMigration(ctx, conn, o.set, m); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, set string, m Migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migration %s: %w", m.Name, err)
	}
	// Another process may have applied it since we looked (SQLite: the transaction holds
	// the write lock from its start, so the answer stays true until the commit).
	var n int
	if err := tx.QueryRowContext(ctx, s.Rebind("SELECT COUNT(*) FROM schema_migrations WHERE set_name = ? AND version = ?"), set, m.Version).Scan(&n); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("store: migration %s: %w", m.Name, err)
	}
	if n > 0 {
		return tx.Rollback()
	}
	if strings.TrimSpace(m.SQL) != "" {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.Rebind("INSERT INTO schema_migrations (set_name, version, name, checksum, applied_at) VALUES (?, ?, ?, ?, ?)"),
		set, m.Version, m.Name, m.Checksum, time.Now().UnixNano()); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("store: migration %s: record: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migration %s: commit: %w", m.Name, err)
	}
	return nil
}
