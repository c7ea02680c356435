package schedule_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/svckit/svckit/schedule"
	"github.com/svckit/svckit/store"
)

func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, _ := os.MkdirTemp("", "schedule")
	defer os.RemoveAll(dir)
	st, _ := store.Open(ctx, "sqlite:"+filepath.Join(dir, "svc.db"))
	defer st.Close()
	claims, _ := schedule.NewSQL(ctx, st) // every replica opens the same store

	s := schedule.New(claims, schedule.WithLocation(time.UTC))
	// Nightly at 02:30 UTC; after an outage, run the missed night once.
	s.Add("digest", "30 2 * * *", func(ctx context.Context) error { return nil }, schedule.WithMissed(schedule.RunOnce))
	// Every 20ms, aligned, on exactly one replica per tick.
	s.AddSchedule("heartbeat", schedule.Every(20*time.Millisecond), func(ctx context.Context) error {
		tick, _ := schedule.TickFrom(ctx)
		fmt.Println("heartbeat on a 20ms boundary:", tick.UnixNano()%int64(20*time.Millisecond) == 0)
		cancel()
		return nil
	})
	s.Run(ctx) // until ctx ends
	// Output: heartbeat on a 20ms boundary: true
}
