package devrun

import (
	"slices"
	"strings"
	"testing"
)

// TestCPUShare checks the GOMAXPROCS each instance gets: the CPUs divided among the
// instances, rounded up, never below 1.
func TestCPUShare(t *testing.T) {
	tests := []struct {
		cpus, n, want int
	}{
		{2, 6, 1}, // the shop on two CPUs
		{2, 2, 1},
		{2, 1, 2},
		{1, 1, 1},
		{16, 6, 3},
		{12, 6, 2},
		{8, 0, 1}, // no instances: nothing to share, but never 0
		{0, 3, 1},
	}
	for _, tc := range tests {
		if got := CPUShare(tc.cpus, tc.n); got != tc.want {
			t.Errorf("CPUShare(%d, %d) = %d, want %d", tc.cpus, tc.n, got, tc.want)
		}
	}
}

// TestCPUEnv checks that an instance's environment carries its CPU share unless svckit
// dev's own environment sets GOMAXPROCS (which it inherits), and that a service's env in
// svckit.yaml replaces it.
func TestCPUEnv(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	set := func(k string) (string, bool) { return "3", k == "GOMAXPROCS" }
	tests := []struct {
		name   string
		lookup func(string) (string, bool)
		svcEnv map[string]string
		want   string // the value in effect: the last GOMAXPROCS entry
	}{
		{"the share", unset, nil, "1"},
		{"svckit dev's own", set, nil, ""}, // inherited from os.Environ, not added
		{"the manifest's", unset, map[string]string{"GOMAXPROCS": "2"}, "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := append([]string{"PATH=/bin"}, cpuEnv(tc.lookup, 2, 6)...)
			env := serviceEnv(base, &Service{Name: "orders", Env: tc.svcEnv})
			got := ""
			for _, kv := range slices.Backward(env) {
				if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
					got = v
					break
				}
			}
			if got != tc.want {
				t.Errorf("GOMAXPROCS in %q = %q, want %q", env, got, tc.want)
			}
		})
	}
}
