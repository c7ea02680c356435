package gctune_test

import (
	"fmt"
	"log"

	"github.com/svckit/svckit/gctune"
)

// A program that does not run under svckit.Main starts a Tuner itself, at the start of
// main, from the same settings: GOGC set by the operator turns it off, and
// GC_HEAP_FLOOR_MIB sets the floor.
func Example() {
	t, err := gctune.StartFromEnv()
	if err != nil {
		log.Fatal(err) // GC_HEAP_FLOOR_MIB is not a number of MiB
	}
	defer t.Stop()
	fmt.Printf("without GC_HEAP_FLOOR_MIB the heap may grow to %d MiB before a collection\n", gctune.DefaultFloor>>20)
	// Output: without GC_HEAP_FLOOR_MIB the heap may grow to 32 MiB before a collection
}
