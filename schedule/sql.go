package schedule

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/svckit/svckit/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQL is a Claimer on a service's store: a claim is a row of schedule_runs, whose primary
// key (job, tick) makes the first insert win.
type SQL struct{ st *store.Store }

var _ Claimer = (*SQL)(nil)

// NewSQL returns a Claimer on st, creating its table (migration set "schedule").
func NewSQL(ctx context.Context, st *store.Store) (*SQL, error) {
	if err := st.Migrate(ctx, migrations, store.WithSet("schedule"), store.WithDir("migrations")); err != nil {
		return nil, err
	}
	return &SQL{st: st}, nil
}

// Claim implements Claimer.
func (s *SQL) Claim(ctx context.Context, job string, tick time.Time, holder string) (bool, error) {
	res, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`INSERT INTO schedule_runs (job, tick, holder, claimed_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (job, tick) DO NOTHING`), job, tick.UnixNano(), holder, time.Now().UnixNano())
	if err != nil {
		return false, fmt.Errorf("schedule: claim %s: %w", job, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("schedule: claim %s: %w", job, err)
	}
	return n == 1, nil
}

// Finish implements Claimer.
func (s *SQL) Finish(ctx context.Context, job string, tick time.Time, runErr error) error {
	var msg sql.NullString
	if runErr != nil {
		msg = sql.NullString{String: runErr.Error(), Valid: true}
	}
	_, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`UPDATE schedule_runs SET finished_at = ?, error = ? WHERE job = ? AND tick = ?`),
		time.Now().UnixNano(), msg, job, tick.UnixNano())
	return err
}

// Last implements Claimer.
func (s *SQL) Last(ctx context.Context, job string) (time.Time, bool, error) {
	var tick sql.NullInt64
	err := s.st.ReadDB().QueryRowContext(ctx, s.st.Rebind(`SELECT MAX(tick) FROM schedule_runs WHERE job = ?`), job).Scan(&tick)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule: last %s: %w", job, err)
	}
	if !tick.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, tick.Int64), true, nil
}

// Purge deletes the records of runs claimed before t, keeping each job's latest.
func (s *SQL) Purge(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.st.DB().ExecContext(ctx, s.st.Rebind(`DELETE FROM schedule_runs WHERE claimed_at < ?
		AND tick < (SELECT MAX(r.tick) FROM schedule_runs r WHERE r.job = schedule_runs.job)`), before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("schedule: purge: %w", err)
	}
	return res.RowsAffected()
}
