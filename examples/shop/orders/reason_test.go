package orders

import (
	"errors"
	"testing"

	"github.com/svckit/svckit/svcerr"
)

func TestCleanReason(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"step charge: payment declined: amount 178000 exceeds the limit of 100000 (cause: failed_precondition: payment declined: …: rpc error: code = FailedPrecondition desc = x)",
			"payment declined: amount 178000 exceeds the limit of 100000", true},
		{"step reserve-stock: product \"nope\" does not exist (cause: not_found: product \"nope\" does not exist)", "product \"nope\" does not exist", true},
		// Not a stepError's text: nothing of it is shown.
		{"step charge: failed_precondition: payment declined: rpc error: code = FailedPrecondition desc = x", "", false},
		{"step confirm: sql: database is locked", "", false},
		{"plain words", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		if got, ok := cleanReason(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("cleanReason(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestFailStep checks which errors' messages become the customer's reason, and that the
// reason and the cause survive the saga's "step NAME: " text.
func TestFailStep(t *testing.T) {
	const down = "down"
	traced := &sagaState{Trace: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	tests := []struct {
		name string
		err  error
		st   *sagaState
		want string
	}{
		{"refused", svcerr.New(svcerr.FailedPrecondition, "not enough stock"), &sagaState{}, "not enough stock"},
		{"not found", svcerr.New(svcerr.NotFound, "product \"x\" does not exist"), &sagaState{}, "product \"x\" does not exist"},
		{"unavailable", svcerr.New(svcerr.Unavailable, "no connection to 10.0.0.7:81"), &sagaState{}, down},
		{"unavailable, traced", svcerr.New(svcerr.Unavailable, "no connection to 10.0.0.7:81"), traced, down + " (trace 4bf92f3577b34da6a3ce929d0e0e4736)"},
		{"deadline", svcerr.New(svcerr.DeadlineExceeded, "deadline exceeded"), &sagaState{}, down},
		{"permission denied", svcerr.New(svcerr.PermissionDenied, "not allowed to call catalog.Reserve"), &sagaState{}, down},
		{"plain error", errors.New("dial tcp 10.0.0.7:81: refused"), &sagaState{}, down},
		{"bad traceparent", svcerr.New(svcerr.Internal, "x"), &sagaState{Trace: map[string]string{"traceparent": "00-zz-yy-01"}}, down},
		{"message with the marker", svcerr.New(svcerr.FailedPrecondition, "a (cause: b"), &sagaState{}, "a (b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := failStep(tt.err, down, tt.st)
			if got, ok := cleanReason("step x: " + err.Error()); !ok || got != tt.want {
				t.Errorf("reason %q, %v; want %q", got, ok, tt.want)
			}
			if !errors.Is(err, tt.err) || svcerr.KindOf(err) != svcerr.KindOf(tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}
