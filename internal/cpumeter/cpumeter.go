// Package cpumeter reads what svckit's benchmarks report per operation besides wall-clock
// time, which other tenants of a shared machine distort: the CPU time the process has
// used and what it has allocated on the heap, all goroutines included.
package cpumeter

import "runtime/metrics"

// Heap is what the process has allocated on the heap so far, all goroutines included.
type Heap struct{ Bytes, Objects uint64 }

// Sub returns what was allocated between o and h.
func (h Heap) Sub(o Heap) Heap { return Heap{h.Bytes - o.Bytes, h.Objects - o.Objects} }

// Add returns the sum of h and o.
func (h Heap) Add(o Heap) Heap { return Heap{h.Bytes + o.Bytes, h.Objects + o.Objects} }

// ReadHeap reads the process's cumulative heap allocations from runtime/metrics, which,
// unlike runtime.ReadMemStats, does not stop the world.
func ReadHeap() Heap {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/allocs:objects"}}
	metrics.Read(s)
	return Heap{s[0].Value.Uint64(), s[1].Value.Uint64()}
}
