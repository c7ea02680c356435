package orders

import "testing"

func TestCleanReason(t *testing.T) {
	tests := []struct{ in, want string }{
		{"step charge: failed_precondition: payment declined: amount 178000 exceeds the limit of 100000: rpc error: code = FailedPrecondition desc = x",
			"payment declined: amount 178000 exceeds the limit of 100000"},
		{"step reserve-stock: not_found: product \"nope\" does not exist", "product \"nope\" does not exist"},
		{"plain words", "plain words"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := cleanReason(tc.in); got != tc.want {
			t.Errorf("cleanReason(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
