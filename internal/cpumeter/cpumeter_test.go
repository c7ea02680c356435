package cpumeter_test

import (
	"testing"

	"github.com/svckit/svckit/internal/cpumeter"
)

var sink []byte

func TestReadHeap(t *testing.T) {
	// 100,000 allocations of 1 KiB: the runtime publishes its per-P counts as it
	// refills spans and at each GC, which this many bytes go through.
	h0 := cpumeter.ReadHeap()
	for range 100_000 {
		sink = make([]byte, 1024)
	}
	h := cpumeter.ReadHeap().Sub(h0)
	if h.Objects < 50_000 || h.Bytes < 50_000*1024 {
		t.Fatalf("heap allocations %+v; want at least 50,000 objects and 50 MiB", h)
	}
	if got := h.Add(h0).Sub(h0); got != h {
		t.Fatalf("Add then Sub = %+v; want %+v", got, h)
	}
}
