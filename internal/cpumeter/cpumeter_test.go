package cpumeter_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/cpumeter"
)

var sink []byte

func TestCounts(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("Process is not measured on " + runtime.GOOS)
	}
	// 100,000 allocations of 1 KiB: the runtime publishes its per-P counts as it
	// refills spans and at each GC, which this many bytes go through.
	h0, c0 := cpumeter.ReadHeap(), cpumeter.Process()
	for range 100_000 {
		sink = make([]byte, 1024)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cpumeter.Process() == c0 && time.Now().Before(deadline) {
		sink = make([]byte, 1024)
	}
	h := cpumeter.ReadHeap().Sub(h0)
	if c := cpumeter.Process(); c <= c0 {
		t.Fatalf("CPU time did not advance: %v then %v", c0, c)
	}
	if h.Objects < 50_000 || h.Bytes < 50_000*1024 {
		t.Fatalf("heap allocations %+v; want at least 50,000 objects and 50 MiB", h)
	}
	if got := h.Add(h0).Sub(h0); got != h {
		t.Fatalf("Add then Sub = %+v; want %+v", got, h)
	}
}
