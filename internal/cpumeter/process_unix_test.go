//go:build unix

package cpumeter_test

import (
	"testing"
	"time"

	"github.com/svckit/svckit/internal/cpumeter"
)

func TestProcess(t *testing.T) {
	c0 := cpumeter.Process()
	deadline := time.Now().Add(5 * time.Second)
	for cpumeter.Process() == c0 && time.Now().Before(deadline) {
		sink = make([]byte, 1024)
	}
	if c := cpumeter.Process(); c <= c0 {
		t.Fatalf("CPU time did not advance: %v then %v", c0, c)
	}
}
