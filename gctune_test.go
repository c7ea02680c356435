package svckit_test

import (
	"testing"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/gctune"
)

// TestGCHeapFloorSetting checks the setting's default against gctune.DefaultFloor and
// that a bad value is refused at start naming the setting.
func TestGCHeapFloorSetting(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    int
		wantErr bool
	}{
		{"default", nil, gctune.DefaultFloor >> 20, false},
		{"off", map[string]string{"GC_HEAP_FLOOR_MIB": "0"}, 0, false},
		{"set", map[string]string{"GC_HEAP_FLOOR_MIB": "128"}, 128, false},
		{"negative", map[string]string{"GC_HEAP_FLOOR_MIB": "-1"}, 0, true},
		{"not a number", map[string]string{"GC_HEAP_FLOOR_MIB": "lots"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c svckit.Config
			err := config.Load(&c, config.WithArgs(nil), config.WithEnv(func(k string) (string, bool) {
				v, ok := tt.env[k]
				return v, ok
			}))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error, floor %d", c.GCHeapFloorMiB)
				}
				t.Log(err)
				return
			}
			if err != nil || c.GCHeapFloorMiB != tt.want {
				t.Fatalf("GCHeapFloorMiB %d (%v), want %d", c.GCHeapFloorMiB, err, tt.want)
			}
		})
	}
}
