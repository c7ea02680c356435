// Package gctune keeps the Go garbage collector from running needlessly often in a
// process whose live heap is small, as a microservice's usually is.
//
// Go sets the heap goal of the next collection to twice the live heap (GOGC=100), and to
// at least 4 MB. A service that keeps 5 MB live while it allocates 100 MB/s for its
// requests then collects ~20 times a second, and each collection costs CPU beyond its
// marking: goroutine stacks it shrinks regrow, and allocation assists slow requests. In
// the shop example under load (bench/shop.sh) its services collected 45 times per 1,000
// orders at Go's default and 3.3 times with the default floor, which took ~60 MB of
// resident memory per service instead of ~35 MB (docs/performance.md has the figures).
//
// A [Tuner] gives the collector a floor: after each collection it sets the GC percentage
// (debug.SetGCPercent) so that the next goal is about the floor while the live heap is
// small, and the process's own setting (GOGC=100 unless changed) once the live heap
// passes half the floor. So a process
// uses up to the floor for its heap ([DefaultFloor], 32 MiB, in svckit.Main) instead of
// ~4–10 MB, and collects a few times a second instead of dozens; a large heap is
// collected as Go would anyway. A memory limit (GOMEMLIMIT, debug.SetMemoryLimit) still
// bounds the heap: the runtime collects earlier when the limit requires it, whatever the
// percentage.
//
// The percentage follows the live heap one collection late: it is set by a cleanup that
// runs just after each collection. A live heap that jumps past the floor triggers a
// collection at the floor as usual, and the tuner then returns to the process's own
// setting; only in the moment between that collection's end and the cleanup is the goal
// computed with the raised percentage.
//
// A service's admin /metrics shows what the Tuner chose: go_gc_gogc_percent is the
// percentage it set last, go_gc_heap_goal_bytes the goal that follows from it.
//
// The GC percentage is the process's, so one Tuner at a time runs in a process: Start
// returns nil while another runs (several svckit Apps in one test binary, say), and
// svckit.Main starts none when the operator has chosen GOGC.
package gctune

import (
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultFloor is the heap floor that svckit.Main uses unless configured otherwise.
const DefaultFloor = 32 << 20

// running is set while a Tuner runs. It is the package's one variable: the GC percentage
// it guards belongs to the process, not to a Tuner, and two Tuners would each restore
// the other's setting at Stop.
var running atomic.Bool

// heapMinimum is the runtime's smallest heap goal at GOGC=100, 4 MiB. The runtime scales
// it with the GC percentage (4 MiB × GOGC/100), so a percentage above 100 × floor/4 MiB
// would raise the goal past the floor even for an empty heap.
const heapMinimum = 4 << 20

// Tuner raises the GC percentage while the live heap is small. Create it with [Start].
type Tuner struct {
	floor  uint64
	before int // the GC percentage when the Tuner started, restored by Stop

	mu      sync.Mutex
	stopped bool
	percent int // the percentage last set
	sample  []metrics.Sample
}

// sentinel is garbage allocated for one collection: its cleanup runs after the
// collection that freed it, which is how the Tuner learns that a cycle has ended. It holds
// a pointer so that the runtime never packs it into a tiny allocation beside other
// objects, whose survival would keep its cleanup from running.
type sentinel struct{ _ *byte }

// Start starts a Tuner that keeps the heap goal at about floor bytes while the live heap
// is smaller than half of it. The floor is lowered to half the process's memory limit
// (GOMEMLIMIT) and to a quarter of its cgroup's memory limit (v1 or v2), when it has
// them, so that a small container is not asked to grow its heap past what it may use.
// Start returns nil, and tunes nothing, for a floor of 0 or less, when the collector is
// off (GOGC=off), and while another Tuner runs in the process.
func Start(floor int64) *Tuner { return start(floor, os.DirFS("/")) }

func start(floor int64, root fs.FS) *Tuner {
	if limit := debug.SetMemoryLimit(-1); limit < math.MaxInt64 && floor > limit/2 {
		floor = limit / 2
	}
	if limit := cgroupMemoryLimit(root); limit > 0 && floor > limit/4 {
		floor = limit / 4
	}
	if floor <= 0 || !running.CompareAndSwap(false, true) {
		return nil
	}
	before := debug.SetGCPercent(100)
	debug.SetGCPercent(before)
	if before < 0 {
		running.Store(false)
		return nil
	}
	t := &Tuner{floor: uint64(floor), before: before, percent: before,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	t.adjust()
	t.arm()
	return t
}

// EnvFloor is the environment variable that [StartFromEnv] reads the floor from, in MiB:
// svckit.Main's setting of the same name.
const EnvFloor = "GC_HEAP_FLOOR_MIB"

// StartFromEnv starts a Tuner as svckit.Main does, for a program that does not run under
// it: none when GOGC is set (the operator's choice wins) or GC_HEAP_FLOOR_MIB is 0, the
// floor GC_HEAP_FLOOR_MIB MiB when it is set, and [DefaultFloor] otherwise. A value that
// is not a number of MiB is an error naming the variable. The Tuner is nil when none was
// started; Stop on it does nothing.
func StartFromEnv() (*Tuner, error) {
	if _, set := os.LookupEnv("GOGC"); set {
		return nil, nil
	}
	floor := int64(DefaultFloor)
	if v, ok := os.LookupEnv(EnvFloor); ok {
		mib, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || mib < 0 || mib > 1<<20 {
			return nil, fmt.Errorf("gctune: %s=%q: want a number of MiB from 0 to %d", EnvFloor, v, 1<<20)
		}
		floor = mib << 20
	}
	return Start(floor), nil
}

// Floor returns the heap floor in bytes.
func (t *Tuner) Floor() int64 { return int64(t.floor) }

// Percent returns the GC percentage the Tuner set last.
func (t *Tuner) Percent() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.percent
}

// Stop stops tuning and restores the GC percentage the process had before Start. Stop
// on a nil Tuner does nothing.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.stopped = true
	debug.SetGCPercent(t.before)
	t.percent = t.before
	running.Store(false)
}

// arm allocates a sentinel whose cleanup adjusts the percentage once the next
// collection has freed it, and arms the next one.
func (t *Tuner) arm() {
	s := new(sentinel)
	runtime.AddCleanup(s, func(t *Tuner) {
		if t.adjust() {
			t.arm()
		}
	}, t)
}

// adjust sets the GC percentage for the live heap the last collection left, and reports
// whether the Tuner still runs.
func (t *Tuner) adjust() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	metrics.Read(t.sample)
	var v [3]uint64 // live heap, goroutine stacks, globals
	for i, m := range t.sample {
		if m.Value.Kind() == metrics.KindUint64 {
			v[i] = m.Value.Uint64()
		}
	}
	p := percentFor(v[0], v[1]+v[2], t.floor, t.before)
	// Small changes are not worth the heap lock that setting the percentage takes.
	if p != t.percent && (p == t.before || math.Abs(float64(p-t.percent)) > 0.1*float64(t.percent)) {
		debug.SetGCPercent(p)
		t.percent = p
	}
	return true
}

// percentFor returns the GC percentage that puts the next heap goal at floor, given the
// live heap and the stacks and globals that the collector scans besides. The runtime's
// goal is live + (live+roots)×p/100, and at least heapMinimum×p/100; so p is
// (floor-live)/(live+roots), at most floor/heapMinimum (where the minimum reaches the
// floor) and at least base, the process's own setting.
func percentFor(live, roots, floor uint64, base int) int {
	top := int(floor * 100 / heapMinimum)
	if live >= floor {
		return base
	}
	p := top
	if scanned := live + roots; scanned > 0 {
		p = int(min((floor-live)*100/scanned, uint64(top)))
	}
	return max(p, base)
}

// cgroupMemoryLimit returns the memory limit of the process's cgroup in bytes, read
// below root (the file system's root: proc/self/cgroup, sys/fs/cgroup), or 0 when it has
// none or it cannot be read. It reads cgroup v2's memory.max and cgroup v1's
// memory.limit_in_bytes, in the process's own cgroup and, inside a container whose
// cgroup is mounted as the root, at the mount's root.
func cgroupMemoryLimit(root fs.FS) int64 {
	b, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0
	}
	var files []string
	for line := range strings.Lines(string(b)) {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		dir := strings.Trim(parts[2], "/")
		switch {
		case parts[0] == "0" && parts[1] == "":
			files = append(files, path.Join("sys/fs/cgroup", dir, "memory.max"), "sys/fs/cgroup/memory.max")
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			files = append(files, path.Join("sys/fs/cgroup/memory", dir, "memory.limit_in_bytes"), "sys/fs/cgroup/memory/memory.limit_in_bytes")
		}
	}
	for _, f := range files {
		b, err := fs.ReadFile(root, f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<62 {
			return 0 // "max", or v1's page-rounded MaxInt64: no limit
		}
		return n
	}
	return 0
}
