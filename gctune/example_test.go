package gctune_test

import (
	"fmt"
	"os"

	"github.com/svckit/svckit/gctune"
)

// A program that does not run under svckit.Main starts a Tuner itself, at the start of
// main, unless the operator chose GOGC.
func Example() {
	if _, set := os.LookupEnv("GOGC"); !set {
		t := gctune.Start(gctune.DefaultFloor) // nil, and no tuning, under GOGC=off
		defer t.Stop()
	}
	fmt.Printf("the heap may grow to %d MiB before the first collections\n", gctune.DefaultFloor>>20)
	// Output: the heap may grow to 32 MiB before the first collections
}
