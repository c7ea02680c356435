package schedule_test

import (
	"context"
	"testing"
	"time"

	"github.com/svckit/svckit/schedule"
)

func TestParseEvery(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 8, 0, 0, 100_000_000, time.UTC) // 08:00:00.1
	tests := []struct {
		spec string
		want time.Time // the next tick after t0; zero: an error
	}{
		{"@every 250ms", t0.Add(150 * time.Millisecond)},
		{"@every 1.5s", time.Date(2026, 11, 27, 8, 0, 1, 500_000_000, time.UTC)},
		{"@every 10s", time.Date(2026, 11, 27, 8, 0, 10, 0, time.UTC)},
		{"@every 0s", time.Time{}},
		{"@every -1s", time.Time{}},
		{"@every soon", time.Time{}},
		{"*/2 * * * * *", time.Date(2026, 11, 27, 8, 0, 2, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := schedule.Parse(tc.spec)
			if tc.want.IsZero() {
				if err == nil {
					t.Fatalf("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(t0); !got.Equal(tc.want) {
				t.Errorf("Next = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTimeoutKeepsTick: a run bounded by WithTimeout has a deadline and still knows its
// tick.
func TestTimeoutKeepsTick(t *testing.T) {
	s := schedule.New(sqlClaimers(t, 1)[0])
	type seen struct {
		tick        time.Time
		ok, hasDead bool
	}
	runs := make(chan seen, 1)
	if err := s.AddSchedule("bounded", schedule.Every(20*time.Millisecond), func(ctx context.Context) error {
		tick, ok := schedule.TickFrom(ctx)
		_, dl := ctx.Deadline()
		select {
		case runs <- seen{tick, ok, dl}:
		default:
		}
		return nil
	}, schedule.WithTimeout(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	r := <-runs
	cancel()
	<-done
	if !r.ok || r.tick.IsZero() || !r.hasDead {
		t.Errorf("run saw tick %v (ok %v), deadline %v", r.tick, r.ok, r.hasDead)
	}
}
