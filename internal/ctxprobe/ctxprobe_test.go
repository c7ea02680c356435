package ctxprobe_test

import (
	"context"
	"testing"

	"github.com/svckit/svckit/internal/ctxprobe"
)

type keyA struct{}
type keyB struct{}

func TestFirstKey(t *testing.T) {
	tests := []struct {
		name string
		ask  func(ctx context.Context)
		want any
	}{
		{"none asked", func(context.Context) {}, nil},
		{"one key", func(ctx context.Context) { ctx.Value(keyA{}) }, keyA{}},
		{"the first of two", func(ctx context.Context) { ctx.Value(keyB{}); ctx.Value(keyA{}) }, keyB{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ctxprobe.FirstKey(tc.ask); got != tc.want {
				t.Errorf("FirstKey = %v, want %v", got, tc.want)
			}
		})
	}
}

// The probe answers nil to every lookup, so an accessor sees an empty context.
func TestProbeHoldsNoValues(t *testing.T) {
	var got any = "unset"
	ctxprobe.FirstKey(func(ctx context.Context) { got = ctx.Value(keyA{}) })
	if got != nil {
		t.Errorf("the probe answered %v, want nil", got)
	}
}
