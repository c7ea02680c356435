package notifications

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/store"
	_ "github.com/svckit/svckit/store/sqlite"
)

// TestDigest records notifications at known times and checks the digest of several ticks
// (whole seconds, as the scheduler's): it counts the notifications created strictly before
// the tick, and records that count for the tick.
func TestDigest(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "notifications.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx, Migrations, store.WithDir("migrations")); err != nil {
		t.Fatal(err)
	}
	s := New(st, WithBatch(0, 1))
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for i := range 10 { // one notification a second: base, base+1s, … base+9s
		r := notificationRow{ctx: ctx, messageID: fmt.Sprintf("m%d", i), orderID: "o", customer: "ada",
			kind: "OrderPlaced", text: "t", at: base.Add(time.Duration(i) * time.Second).UnixMilli()}
		if err := s.rec.record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		tick time.Time
		want int64
	}{
		{"before the first", base.Add(-time.Second), 0},
		{"at the first", base, 0},
		{"at the second", base.Add(time.Second), 1},
		{"in the middle", base.Add(5 * time.Second), 5},
		{"at the last", base.Add(9 * time.Second), 9},
		{"after the last", base.Add(time.Minute), 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := s.Digest(ctx, tc.tick)
			if err != nil || n != tc.want {
				t.Fatalf("Digest(%v) = %d, %v; want %d", tc.tick, n, err, tc.want)
			}
			var sent int64
			if err := st.DB().QueryRowContext(ctx, `SELECT sent FROM digests WHERE tick = ?`, tc.tick.Unix()).Scan(&sent); err != nil || sent != tc.want {
				t.Fatalf("digest row of %v: sent %d, %v; want %d", tc.tick, sent, err, tc.want)
			}
		})
	}

	// The count reads the index on created_at alone, not the table: a scan of every row
	// grew with the table, every 30 s.
	rows, err := st.DB().QueryContext(ctx, "EXPLAIN QUERY PLAN "+digestCount, base.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "USING COVERING INDEX notifications_created (created_at<?)") {
		t.Errorf("query plan of the digest's count: %q, want a range of the covering index notifications_created", got)
	}
}
