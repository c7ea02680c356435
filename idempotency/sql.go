package idempotency

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

// SQL is a Store on a service's store, in the table idempotency_keys.
type SQL struct {
	st         *store.Store
	now        func() time.Time
	messageTTL time.Duration
}

// SQLOption configures NewSQL.
type SQLOption func(*SQL)

// WithMessageTTL sets how long Once remembers a message id; default 7 days. Keep it
// longer than the time within which a message can be redelivered.
func WithMessageTTL(d time.Duration) SQLOption { return func(s *SQL) { s.messageTTL = d } }

var _ Store = (*SQL)(nil)

// NewSQL returns a Store on st, creating its table (migration set "idempotency").
func NewSQL(ctx context.Context, st *store.Store, opts ...SQLOption) (*SQL, error) {
	if err := st.Migrate(ctx, migrations, store.WithSet("idempotency"), store.WithDir("migrations")); err != nil {
		return nil, err
	}
	s := &SQL{st: st, now: time.Now, messageTTL: 7 * 24 * time.Hour}
	for _, fn := range opts {
		fn(s)
	}
	return s, nil
}

// Store returns the store the records are in.
func (s *SQL) Store() *store.Store { return s.st }

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *SQL) get(ctx context.Context, q queryer, scope, key string) (Record, bool, error) {
	r := Record{Scope: scope, Key: key}
	var state string
	var created, expires int64
	err := q.QueryRowContext(ctx, s.st.Rebind(`SELECT state, fingerprint, response, kind, claim, created_at, expires_at
		FROM idempotency_keys WHERE scope = ? AND key = ? AND expires_at > ?`), scope, key, s.now().UnixNano()).
		Scan(&state, &r.Fingerprint, &r.Response, &r.Kind, &r.Claim, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("idempotency: get: %w", err)
	}
	r.State, r.CreatedAt, r.ExpiresAt = State(state), time.Unix(0, created), time.Unix(0, expires)
	return r, true, nil
}

// Get implements Store.
func (s *SQL) Get(ctx context.Context, scope, key string) (Record, bool, error) {
	return s.get(ctx, s.st.ReadDB(), scope, key)
}

// claim inserts a record for (scope, key) with the claim id claimID unless a live one
// exists, and reports whether it did.
func (s *SQL) claim(ctx context.Context, q queryer, scope, key, fingerprint string, state State, kind, claimID string, ttl time.Duration) (bool, error) {
	now := s.now().UnixNano()
	var created int64
	err := q.QueryRowContext(ctx, s.st.Rebind(`INSERT INTO idempotency_keys
		(scope, key, state, fingerprint, response, kind, claim, created_at, expires_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)
		ON CONFLICT (scope, key) DO UPDATE SET state = excluded.state, fingerprint = excluded.fingerprint,
			response = NULL, kind = excluded.kind, claim = excluded.claim, created_at = excluded.created_at,
			expires_at = excluded.expires_at
		WHERE idempotency_keys.expires_at <= ?
		RETURNING created_at`), scope, key, string(state), fingerprint, kind, claimID, now, now+int64(ttl), now).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("idempotency: claim: %w", err)
	}
	return true, nil
}

// Begin implements Store.
func (s *SQL) Begin(ctx context.Context, scope, key, fingerprint string, lockTTL time.Duration) (Record, bool, error) {
	for range 3 {
		id := NewClaimID()
		ok, err := s.claim(ctx, s.st.DB(), scope, key, fingerprint, InProgress, "", id, lockTTL)
		if err != nil {
			return Record{}, false, err
		}
		if ok {
			now := s.now()
			return Record{Scope: scope, Key: key, State: InProgress, Fingerprint: fingerprint, Claim: id, CreatedAt: now, ExpiresAt: now.Add(lockTTL)}, true, nil
		}
		r, found, err := s.Get(ctx, scope, key)
		if err != nil || found {
			return r, false, err
		}
		// The record expired between the two statements: claim again.
	}
	return Record{}, false, errors.New("idempotency: begin: record keeps changing")
}

// Complete implements Store.
func (s *SQL) Complete(ctx context.Context, scope, key, claim, kind string, response []byte, ttl time.Duration) error {
	res, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`UPDATE idempotency_keys SET state = ?, kind = ?, response = ?, expires_at = ?
		WHERE scope = ? AND key = ? AND state = ? AND claim = ?`),
		string(Completed), kind, response, s.now().Add(ttl).UnixNano(), scope, key, string(InProgress), claim)
	if err != nil {
		return fmt.Errorf("idempotency: complete: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("idempotency: complete: %w", err)
	}
	if n == 0 {
		return ErrClaimLost
	}
	return nil
}

// Release implements Store.
func (s *SQL) Release(ctx context.Context, scope, key, claim string) error {
	_, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND state = ? AND claim = ?`),
		scope, key, string(InProgress), claim)
	if err != nil {
		return fmt.Errorf("idempotency: release: %w", err)
	}
	return nil
}

// Purge deletes expired records and returns how many. Run it now and then, for example
// from a schedule.
func (s *SQL) Purge(ctx context.Context) (int64, error) {
	res, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`DELETE FROM idempotency_keys WHERE expires_at <= ?`), s.now().UnixNano())
	if err != nil {
		return 0, fmt.Errorf("idempotency: purge: %w", err)
	}
	return res.RowsAffected()
}

// Once runs fn in a transaction of s's store unless the message msgID was processed in
// scope before, and records msgID in the same transaction. It reports whether fn ran and
// committed. If fn fails, nothing is recorded and a redelivery runs fn again; if the
// transaction commits, redeliveries do nothing for as long as the id is kept (see
// WithMessageTTL). This gives the writes fn makes in tx exactly-once effect under
// at-least-once delivery.
func Once(ctx context.Context, s *SQL, scope, msgID string, fn func(tx *sql.Tx) error) (bool, error) {
	ran := false
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		ran = false
		ok, err := s.claim(ctx, tx, scope, msgID, "", Completed, KindMessage, "", s.messageTTL)
		if err != nil || !ok {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		ran = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return ran, nil
}
