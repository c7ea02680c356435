package schedule

import (
	"slices"
	"testing"
	"time"
)

func TestDue(t *testing.T) {
	h0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(hours ...int) []time.Time {
		var out []time.Time
		for _, h := range hours {
			out = append(out, h0.Add(time.Duration(h)*time.Hour))
		}
		return out
	}
	tests := []struct {
		name    string
		missed  Missed
		catchUp int
		tick    int           // hour of the due tick
		now     time.Duration // since h0
		run     []time.Time
		last    time.Time
	}{
		{"on time", Skip, 0, 1, time.Hour + time.Second, at(1), at(1)[0]},
		{"late within tolerance", Skip, 0, 1, time.Hour + 59*time.Second, at(1), at(1)[0]},
		{"late, skipped", Skip, 0, 1, time.Hour + 61*time.Second, nil, at(1)[0]},
		{"outage, skip", Skip, 0, 1, 5*time.Hour + 40*time.Minute, nil, at(5)[0]},
		{"outage, run once", RunOnce, 0, 1, 5*time.Hour + 40*time.Minute, at(5), at(5)[0]},
		{"outage, run all", RunAll, 100, 1, 5*time.Hour + 40*time.Minute, at(1, 2, 3, 4, 5), at(5)[0]},
		{"outage, run all bounded", RunAll, 2, 1, 5*time.Hour + 40*time.Minute, at(4, 5), at(5)[0]},
		{"outage ending near a tick", RunAll, 100, 1, 5*time.Hour + 30*time.Second, at(1, 2, 3, 4), at(4)[0]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j := &job{sched: Every(time.Hour), missed: tc.missed, maxCatchUp: tc.catchUp}
			run, last := j.due(at(tc.tick)[0], h0.Add(tc.now))
			if !slices.EqualFunc(run, tc.run, time.Time.Equal) || !last.Equal(tc.last) {
				t.Errorf("due = %v, %v; want %v, %v", run, last, tc.run, tc.last)
			}
		})
	}
}

func TestEveryAligned(t *testing.T) {
	e := Every(10 * time.Second)
	base := time.Date(2026, 1, 1, 12, 0, 3, 5, time.UTC)
	if got, want := e.Next(base), time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
	if got, want := e.Next(time.Date(2026, 1, 1, 12, 0, 10, 0, time.UTC)), time.Date(2026, 1, 1, 12, 0, 20, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next on a tick = %v, want %v", got, want)
	}
	s, err := Parse("@every 10s")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Next(base).Equal(e.Next(base)) {
		t.Error("@every is not aligned")
	}
	s, err = Parse("*/15 * * * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Next(base), time.Date(2026, 1, 1, 12, 0, 15, 0, time.UTC); !got.Equal(want) {
		t.Errorf("seconds spec Next = %v, want %v", got, want)
	}
	if _, err := Parse("not a spec"); err == nil {
		t.Error("bad spec parsed")
	}
}
