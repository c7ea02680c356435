//go:build !unix

package observe

import "time"

// cpuTime returns 0: the CPU time of the process is not measured on this platform.
func cpuTime() time.Duration { return 0 }
