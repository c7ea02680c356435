package lock

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/svckit/svckit/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQL is a Backend that keeps locks as rows of the table locks in a service's store. The
// fencing token is a counter in the row, incremented on every acquisition. Expiry uses
// the clocks of the lock holders, which should agree to well within a TTL.
type SQL struct {
	st  *store.Store
	now func() time.Time
}

var _ Backend = (*SQL)(nil)

// NewSQL returns a Backend on st, creating its table (migration set "lock").
func NewSQL(ctx context.Context, st *store.Store) (*SQL, error) {
	if err := st.Migrate(ctx, migrations, store.WithSet("lock"), store.WithDir("migrations")); err != nil {
		return nil, err
	}
	return &SQL{st: st, now: time.Now}, nil
}

// Acquire implements Backend.
func (s *SQL) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (Grant, bool, error) {
	now := s.now().UnixNano()
	var token uint64
	err := s.st.DB().QueryRowContext(ctx, s.st.Rebind(`INSERT INTO locks (name, holder, token, expires_at) VALUES (?, ?, 1, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = locks.token + 1, expires_at = excluded.expires_at
		WHERE locks.expires_at < ?
		RETURNING token`), name, holder, now+int64(ttl), now).Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, false, nil
	}
	if err != nil {
		return Grant{}, false, fmt.Errorf("lock: acquire %s: %w", name, err)
	}
	return Grant{Name: name, Holder: holder, Token: token, Version: token}, true, nil
}

// Renew implements Backend.
func (s *SQL) Renew(ctx context.Context, g Grant, ttl time.Duration) (Grant, error) {
	res, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`UPDATE locks SET expires_at = ? WHERE name = ? AND holder = ? AND token = ?`),
		s.now().Add(ttl).UnixNano(), g.Name, g.Holder, g.Token)
	if err != nil {
		return g, fmt.Errorf("lock: renew %s: %w", g.Name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return g, ErrLost
	}
	return g, nil
}

// Release implements Backend.
func (s *SQL) Release(ctx context.Context, g Grant) error {
	_, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`UPDATE locks SET holder = '', expires_at = 0 WHERE name = ? AND holder = ? AND token = ?`),
		g.Name, g.Holder, g.Token)
	return err
}
