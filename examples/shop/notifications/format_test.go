package notifications

import "testing"

func TestFormatCents(t *testing.T) {
	tests := []struct {
		cents int64
		want  string
	}{{0, "0.00"}, {5, "0.05"}, {90, "0.90"}, {2490, "24.90"}, {100000, "1000.00"}, {-2490, "-24.90"}, {-5, "-0.05"}}
	for _, tt := range tests {
		if got := formatCents(tt.cents); got != tt.want {
			t.Errorf("formatCents(%d) = %q; want %q", tt.cents, got, tt.want)
		}
	}
}
