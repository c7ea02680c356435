package orders

import (
	"testing"
	"time"
)

func TestNewIDOrderedByTime(t *testing.T) {
	base := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		first, second time.Time
	}{
		{"a millisecond later", base, base.Add(time.Millisecond)},
		{"a second later", base, base.Add(time.Second)},
		{"a year later", base, base.AddDate(1, 0, 0)},
		{"across a byte of the clock", time.UnixMilli(0xff), time.UnixMilli(0x100)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newID(tc.first), newID(tc.second)
			if !ValidID(a) || !ValidID(b) {
				t.Fatalf("newID gave %q and %q; want valid order ids", a, b)
			}
			if a >= b {
				t.Errorf("newID(%v) = %q sorts at or after newID(%v) = %q", tc.first, a, tc.second, b)
			}
		})
	}
	// The same millisecond: different ids (80 random bits), both valid.
	seen := map[string]bool{}
	for range 1000 {
		id := newID(base)
		if seen[id] {
			t.Fatalf("newID repeated %q", id)
		}
		seen[id] = true
	}
	if id := NewID(); !ValidID(id) || len(id) != len("ord_")+32 {
		t.Errorf("NewID() = %q; want ord_ and 32 hex digits", id)
	}
}
