package gctune

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"testing/fstest"
	"time"
)

// churn allocates total bytes of garbage in 64 KiB pieces while keeping keep bytes live,
// and returns how many collections ran meanwhile and the heap goal at the end.
func churn(total, keep int) (cycles, goal uint64) {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/goal:bytes"}}
	live := make([][]byte, 0, keep>>16)
	for range keep >> 16 {
		live = append(live, make([]byte, 64<<10))
	}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	var sink []byte
	for range total >> 16 {
		sink = make([]byte, 64<<10)
		sink[0] = 1
	}
	runtime.KeepAlive(live)
	metrics.Read(s)
	return s[0].Value.Uint64() - before, s[1].Value.Uint64()
}

// TestTunerSparesCollections churns 512 MiB of garbage over a 2 MiB live heap with Go's
// default and with a 32 MiB floor: the floor must cut the collections and, once a
// collection has measured the live heap, put the heap goal near itself; Stop must give
// back the process's setting.
func TestTunerSparesCollections(t *testing.T) {
	const floor = 32 << 20
	runtime.GC()
	plain, plainGoal := churn(512<<20, 2<<20)

	tu := Start(floor)
	if tu == nil {
		t.Fatal("Start returned nil")
	}
	runtime.GC() // the tuner sets its percentage after a collection
	tuned, _ := churn(512<<20, 2<<20)
	// The goal right after a collection of the small heap, once the tuner has seen it
	// (it runs on the runtime's cleanup goroutine, shortly after the collection).
	var goal uint64
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	for range 100 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		metrics.Read(s)
		if goal = s[0].Value.Uint64(); goal > floor/2 {
			break
		}
	}
	p := tu.Percent()
	tu.Stop()
	t.Logf("GOGC=100: %d collections, goal %d MiB; floor 32 MiB: %d collections, goal %d MiB, GOGC=%d",
		plain, plainGoal>>20, tuned, goal>>20, p)

	if goal < floor/2 || goal > floor*5/4 {
		t.Errorf("heap goal %d MiB with a 32 MiB floor", goal>>20)
	}
	// With goals of 16–32 MiB, 512 MiB of garbage takes at most 32 collections; Go's own
	// goal of 4–10 MiB here takes 50–130.
	if tuned > 40 {
		t.Errorf("%d collections with the floor (%d without): want at most 40", tuned, plain)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after Stop the GC percentage is %d, want the 100 it was", got)
	}
}

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name              string
		live, roots, flr  uint64
		base, wantPercent int
	}{
		{"empty heap: the minimum reaches the floor", 0, 0, 64 * mib, 100, 1600},
		{"tiny heap: capped by the minimum", 1 * mib, 0, 64 * mib, 100, 1600},
		{"small heap", 8 * mib, 0, 64 * mib, 100, 700},
		{"roots count as scanned", 8 * mib, 8 * mib, 64 * mib, 100, 350},
		{"heap near half the floor", 32 * mib, 0, 64 * mib, 100, 100},
		{"heap past the floor", 80 * mib, 0, 64 * mib, 100, 100},
		{"base above the floor's need", 16 * mib, 0, 64 * mib, 400, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentFor(tt.live, tt.roots, tt.flr, tt.base); got != tt.wantPercent {
				t.Errorf("percentFor(%d MiB, %d MiB, %d MiB, %d) = %d, want %d",
					tt.live/mib, tt.roots/mib, tt.flr/mib, tt.base, got, tt.wantPercent)
			}
		})
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"v2 own cgroup", map[string]string{
			"proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"sys/fs/cgroup/kubepods/pod1/c1/memory.max": "268435456\n",
		}, 256 << 20},
		{"v2 namespaced root", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "134217728\n",
		}, 128 << 20},
		{"v2 unlimited", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}, 0},
		{"v1", map[string]string{
			"proc/self/cgroup": "5:cpu,cpuacct:/\n4:memory:/docker/abc\n0::/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "536870912\n",
		}, 512 << 20},
		{"v1 unlimited", map[string]string{
			"proc/self/cgroup": "4:memory:/process_api/x\n",
			"sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n",
		}, 0},
		{"no cgroup files", map[string]string{}, 0},
		{"garbage", map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "lots\n",
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, data := range tt.files {
				fsys[name] = &fstest.MapFile{Data: []byte(data)}
			}
			if got := cgroupMemoryLimit(fsys); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

// TestStartCaps checks that the floor gives way to the memory limits and that GOGC=off
// and a zero floor turn tuning off.
func TestStartCaps(t *testing.T) {
	cgroup := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("67108864\n")}, // 64 MiB
	}
	if tu := start(64<<20, cgroup); tu == nil || tu.Floor() != 16<<20 {
		t.Errorf("a 64 MiB cgroup: floor %v, want 16 MiB", tu.Floor())
	} else {
		tu.Stop()
	}

	defer debug.SetMemoryLimit(debug.SetMemoryLimit(40 << 20))
	if tu := start(64<<20, fstest.MapFS{}); tu == nil || tu.Floor() != 20<<20 {
		t.Errorf("GOMEMLIMIT 40 MiB: floor %v, want 20 MiB", tu.Floor())
	} else {
		tu.Stop()
	}
	debug.SetMemoryLimit(math.MaxInt64)

	if tu := start(0, fstest.MapFS{}); tu != nil {
		t.Error("a zero floor tunes")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	if tu := start(64<<20, fstest.MapFS{}); tu != nil {
		t.Error("GOGC=off tunes")
	}
}

func TestStartFromEnv(t *testing.T) {
	unset := "<unset>"
	tests := []struct {
		name      string
		gogc      string
		floor     string
		wantFloor int64 // 0: no Tuner
		wantErr   bool
	}{
		{"default", unset, unset, DefaultFloor, false},
		{"set", unset, "16", 16 << 20, false},
		{"off", unset, "0", 0, false},
		{"GOGC wins", "200", "16", 0, false},
		{"not a number", unset, "lots", 0, true},
		{"negative", unset, "-4", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range map[string]string{"GOGC": tt.gogc, EnvFloor: tt.floor} {
				t.Setenv(k, "") // restored at the end
				if v == unset {
					os.Unsetenv(k)
				} else {
					os.Setenv(k, v)
				}
			}
			tu, err := StartFromEnv()
			defer tu.Stop()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			var got int64
			if tu != nil {
				got = tu.Floor()
			}
			// A memory limit of the machine's cgroup may lower the floor.
			if got > tt.wantFloor || (tt.wantFloor > 0 && got == 0) {
				t.Errorf("floor %d MiB, want %d MiB", got>>20, tt.wantFloor>>20)
			}
		})
	}
}

// TestOneTunerAtATime starts a second Tuner while one runs: it must not start, or the
// two would restore each other's settings. After Stop a new one starts.
func TestOneTunerAtATime(t *testing.T) {
	first := start(32<<20, fstest.MapFS{})
	if first == nil {
		t.Fatal("the first Tuner did not start")
	}
	if second := start(64<<20, fstest.MapFS{}); second != nil {
		second.Stop()
		first.Stop()
		t.Fatal("a second Tuner started while the first ran")
	}
	first.Stop()
	first.Stop() // twice is harmless
	third := start(32<<20, fstest.MapFS{})
	if third == nil {
		t.Fatal("no Tuner starts after Stop")
	}
	third.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percentage %d after every Tuner stopped, want 100", got)
	}
}
