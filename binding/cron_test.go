package binding_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin without the system's zone files

	"github.com/svckit/svckit/binding"
)

func TestCronFires(t *testing.T) {
	set := mustOpen(t, `
bindings:
  - {name: tick, type: cron, schedule: "@every 30ms", data: '{"job":"digest"}'}
`, binding.Deps{})
	in, _ := set.Input("tick")
	c := newCollector()
	runInput(t, in, c.handle)
	var prev time.Time
	for range 3 {
		e := c.next(t)
		if e.Binding != "tick" || string(e.Data) != `{"job":"digest"}` || e.Subject != "@every 30ms" {
			t.Fatalf("event %+v", e)
		}
		if e.Time.UnixNano()%int64(30*time.Millisecond) != 0 {
			t.Errorf("tick %v is not on a 30ms boundary", e.Time)
		}
		if !e.Time.After(prev) {
			t.Errorf("tick %v after %v", e.Time, prev)
		}
		if e.ID != "tick-"+strconv.FormatInt(e.Time.UnixNano(), 10) || e.Metadata["tick"] != e.Time.UTC().Format(time.RFC3339Nano) {
			t.Errorf("id %q, metadata %v", e.ID, e.Metadata)
		}
		prev = e.Time
	}
}

// A six-field spec with seconds fires on whole seconds.
func TestCronSecondsSpec(t *testing.T) {
	set := mustOpen(t, `
bindings:
  - {name: every-second, type: cron, schedule: "* * * * * *", location: Europe/Berlin}
`, binding.Deps{})
	in, _ := set.Input("every-second")
	c := newCollector()
	runInput(t, in, c.handle)
	if e := c.next(t); e.Time.Nanosecond() != 0 {
		t.Fatalf("tick %v is not a whole second", e.Time)
	}
}

// Replicas that claim ticks in one store fire each tick once between them; with
// claims in NATS KV too.
func TestCronOneReplicaPerTick(t *testing.T) {
	for _, claims := range []string{"store", "kv"} {
		t.Run(claims, func(t *testing.T) {
			bus, _ := startBus(t)
			st := openStore(t)
			cfg := `
bindings:
  - {name: sweep, type: cron, schedule: "@every 20ms", claims: ` + claims + `}
`
			var mu sync.Mutex
			got := map[int64][]int{}
			const ticks = 15
			done := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for r := range 3 {
				set := mustOpen(t, cfg, binding.Deps{Store: st, Bus: bus})
				in, _ := set.Input("sweep")
				wg.Go(func() {
					in.Run(ctx, func(_ context.Context, e binding.Event) error {
						mu.Lock()
						defer mu.Unlock()
						got[e.Time.UnixNano()] = append(got[e.Time.UnixNano()], r)
						if len(got) == ticks {
							close(done)
						}
						return nil
					})
				})
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("too few ticks within 30s")
			}
			cancel()
			wg.Wait()
			for tick, rs := range got {
				if len(rs) != 1 {
					t.Errorf("tick %d fired on replicas %v", tick, rs)
				}
			}
		})
	}
}
