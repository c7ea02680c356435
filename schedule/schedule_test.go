package schedule_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/jsx"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/schedule"
	"github.com/svckit/svckit/store"
)

// claimers returns n Claimers that share one backend, as n replicas would.
type claimers func(t *testing.T, n int) []schedule.Claimer

func sqlClaimers(t *testing.T, n int) []schedule.Claimer {
	path := filepath.Join(t.TempDir(), "sched.sqlite")
	var out []schedule.Claimer
	for range n { // one store per replica, as separate processes have
		st, err := store.Open(context.Background(), "sqlite:"+path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		c, err := schedule.NewSQL(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func kvClaimers(t *testing.T, n int) []schedule.Claimer {
	ctx := context.Background()
	s, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	var out []schedule.Claimer
	for range n {
		nc, err := s.Connect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := schedule.KVBucket(ctx, js, "schedule", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, schedule.NewKV(kv))
	}
	return out
}

// runLog counts the runs of each tick.
type runLog struct {
	mu    sync.Mutex
	runs  map[time.Time]int
	first time.Time
	cond  *sync.Cond
}

func newRunLog() *runLog {
	l := &runLog{runs: map[time.Time]int{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *runLog) add(tick time.Time) {
	l.mu.Lock()
	if l.first.IsZero() || tick.Before(l.first) {
		l.first = tick
	}
	l.runs[tick]++
	l.mu.Unlock()
	l.cond.Broadcast()
}

// waitContiguous waits until n consecutive ticks of sched from the first one ran.
func (l *runLog) waitContiguous(sched schedule.Schedule, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if !l.first.IsZero() {
			t, ok := l.first, true
			for range n {
				if l.runs[t] == 0 {
					ok = false
					break
				}
				t = sched.Next(t)
			}
			if ok {
				return
			}
		}
		l.cond.Wait()
	}
}

func TestReplicasSQL(t *testing.T) { testReplicas(t, sqlClaimers) }
func TestReplicasKV(t *testing.T)  { testReplicas(t, kvClaimers) }

// testReplicas runs 3 schedulers on one backend with a fast schedule for many ticks and
// checks that every tick ran exactly once.
func testReplicas(t *testing.T, open claimers) {
	const ticks = replicaTicks
	sched := schedule.Every(50 * time.Millisecond)
	log := newRunLog()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	perReplica := make([]int, 3)
	var mu sync.Mutex
	for i, c := range open(t, 3) {
		s := schedule.New(c)
		// RunAll: a replica that wakes up late still runs a tick nobody else took.
		err := s.AddSchedule("tick", sched, func(ctx context.Context) error {
			tick, _ := schedule.TickFrom(ctx)
			log.add(tick)
			mu.Lock()
			perReplica[i]++
			mu.Unlock()
			return nil
		}, schedule.WithMissed(schedule.RunAll))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { s.Run(ctx) })
	}
	log.waitContiguous(sched, ticks)
	cancel()
	wg.Wait()
	log.mu.Lock()
	defer log.mu.Unlock()
	for tick, n := range log.runs {
		if n != 1 {
			t.Errorf("tick %v ran %d times", tick, n)
		}
	}
	t.Logf("%d ticks; runs per replica %v", len(log.runs), perReplica)
}

func TestCronSpecReplicas(t *testing.T) {
	sched, err := schedule.Parse("* * * * * *") // every second
	if err != nil {
		t.Fatal(err)
	}
	log := newRunLog()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range sqlClaimers(t, 3) {
		s := schedule.New(c)
		if err := s.Add("every-second", "* * * * * *", func(ctx context.Context) error {
			tick, _ := schedule.TickFrom(ctx)
			log.add(tick)
			return nil
		}, schedule.WithMissed(schedule.RunAll)); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { s.Run(ctx) })
	}
	log.waitContiguous(sched, 3)
	cancel()
	wg.Wait()
	for tick, n := range log.runs {
		if n != 1 || tick.Nanosecond() != 0 {
			t.Errorf("tick %v ran %d times", tick, n)
		}
	}
}

// TestMissedRuns starts a scheduler after an outage of five hourly ticks.
func TestMissedRuns(t *testing.T) {
	tests := []struct {
		name   string
		missed schedule.Missed
		opts   []schedule.JobOption
		want   int
	}{
		{"run once", schedule.RunOnce, nil, 1},
		{"run all", schedule.RunAll, nil, 5},
		{"run all bounded", schedule.RunAll, []schedule.JobOption{schedule.WithMaxCatchUp(3)}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := sqlClaimers(t, 1)[0]
			h0 := time.Now().Truncate(time.Hour).Add(-5 * time.Hour)
			if ok, err := c.Claim(ctx, "hourly", h0, "before"); !ok || err != nil {
				t.Fatal(ok, err)
			}
			log := newRunLog()
			var ran []time.Time
			s := schedule.New(c)
			opts := append([]schedule.JobOption{schedule.WithMissed(tc.missed), schedule.WithTolerance(time.Nanosecond)}, tc.opts...)
			s.AddSchedule("hourly", schedule.Every(time.Hour), func(ctx context.Context) error {
				tick, _ := schedule.TickFrom(ctx)
				log.mu.Lock()
				ran = append(ran, tick)
				log.mu.Unlock()
				log.add(tick)
				return nil
			}, opts...)
			done := make(chan struct{})
			go func() { s.Run(ctx); close(done) }()
			log.mu.Lock()
			for len(ran) < tc.want {
				log.cond.Wait()
			}
			log.mu.Unlock()
			last, _, _ := c.Last(ctx, "hourly")
			cancel()
			<-done
			if len(ran) != tc.want {
				t.Fatalf("ran %v, want %d runs", ran, tc.want)
			}
			if want := h0.Add(5 * time.Hour); !ran[len(ran)-1].Equal(want) || !last.Equal(want) {
				t.Errorf("last run %v, last claimed %v; want %v", ran[len(ran)-1], last, want)
			}
		})
	}
}

// TestReplicasKVCluster runs the replicas test on a bucket replicated over a 3-node
// JetStream cluster, each replica connected to a different node.
func TestReplicasKVCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	testReplicas(t, func(t *testing.T, n int) []schedule.Claimer {
		ctx := context.Background()
		c, err := natsserver.StartCluster(ctx, 3, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Shutdown(context.Background()) })
		var out []schedule.Claimer
		for i := range n {
			nc, err := nats.Connect(c.URL(i % 3))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			js, _ := jetstream.New(nc)
			// Created as schedule.KVBucket does, through jsx: replicas starting together
			// may meet a stream the cluster is still creating.
			kv, err := jsx.CreateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: "schedule", History: 1, Replicas: 3, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, schedule.NewKV(kv))
		}
		return out
	})
}
