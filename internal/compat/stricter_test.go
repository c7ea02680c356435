package compat

import "testing"

func TestStricter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		old, cur string
		want     bool
	}{
		{"public", "bearer", true},
		{"public", "bearer admin", true},
		{"bearer", "public", false},
		{"bearer admin", "public", false},
		{"bearer", "bearer admin", true},
		{"bearer admin", "bearer", false},
		{"bearer admin support", "bearer support admin", false},
		{"bearer admin support", "bearer admin", true}, // roles: support may no longer call
		{"bearer orders:read", "bearer orders:read export", true},
	} {
		if got := stricter(tc.old, tc.cur); got != tc.want {
			t.Errorf("stricter(%q, %q) = %v, want %v", tc.old, tc.cur, got, tc.want)
		}
	}
}
