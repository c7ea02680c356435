package balancer_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/natsserver"
)

// announce registers app's gRPC listener in reg while the app is ready: from the moment
// readiness turns on until it turns off, first thing at shutdown, before the drain. This
// is the wiring proposed for svckit.App.
func announce(app *svckit.App, reg discovery.Registry, meta map[string]string) {
	var mu sync.Mutex
	var r discovery.Registration
	app.Health().Watch(func(ready bool) {
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		switch {
		case ready && r == nil:
			addr, err := app.Addr(ctx, "grpc")
			if err != nil {
				app.Logger().Error("discovery: no gRPC listener to announce", "error", err)
				return
			}
			r = discovery.Announce(ctx, reg, discovery.Instance{Service: app.Name(), Addr: discovery.AdvertiseAddr(addr), Metadata: meta},
				discovery.DefaultTTL, discovery.KeepOptions{Logger: app.Logger()})
		case !ready && r != nil:
			if err := r.Deregister(ctx); err != nil {
				app.Logger().Warn("discovery: deregistering failed", "error", err)
			}
			r = nil
		}
	})
}

type runningApp struct {
	app    *svckit.App
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startAddsvcApp(t *testing.T, reg discovery.Registry, version string) *runningApp {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	app, err := svckit.New(ctx, "addsvc", &svckit.Config{}, svckit.Options{
		Stdout:  io.Discard,
		Args:    []string{"-http-addr", "", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-drain-delay", "100ms"},
		Env:     func(string) (string, bool) { return "", false },
		Signals: []os.Signal{},
	})
	if err != nil {
		t.Fatal(err)
	}
	addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), addsvc.MakeEndpoints(addsvc.New()))
	announce(app, reg, map[string]string{discovery.MetaVersion: version})
	ra := &runningApp{app: app, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- app.Run(ctx) }()
	t.Cleanup(func() { ra.stop(t) })
	return ra
}

func (ra *runningApp) stop(t *testing.T) {
	ra.once.Do(func() {
		ra.cancel()
		select {
		case err := <-ra.done:
			if err != nil {
				t.Errorf("app stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("app did not stop")
		}
	})
}

// TestAppsInRegistry runs three real svckit Apps that announce themselves in the NATS KV
// registry of an embedded server, and a client that balances over them while one App is
// shut down gracefully and another starts: every call succeeds, the stopped App leaves
// the instance set before it stops serving, and the new one joins.
func TestAppsInRegistry(t *testing.T) {
	ns, err := natsserver.Start(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown(context.Background())
	nc, err := ns.Connect(nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	reg, err := natskv.New(t.Context(), nc)
	if err != nil {
		t.Fatal(err)
	}
	apps := []*runningApp{startAddsvcApp(t, reg, "v1"), startAddsvcApp(t, reg, "v1"), startAddsvcApp(t, reg, "v1")}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := balancer.Watch(ctx, reg, "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(b.Instances()) == 3 })
	sum := sumClient(t, b, time.Second, retry(3))

	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := sum(ctx, addsvc.SumRequest{A: int64(i), B: 1}); err != nil {
					failed.Add(1)
					t.Logf("call failed: %v", err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	apps[0].stop(t)
	waitFor(t, func() bool { return len(b.Instances()) == 2 })
	startAddsvcApp(t, reg, "v2")
	waitFor(t, func() bool { return len(b.Instances()) == 3 })
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d calls succeeded, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d calls failed", failed.Load())
	}
	versions := map[string]int{}
	for _, s := range b.Stats() {
		versions[s.Instance.Version()]++
	}
	if fmt.Sprint(versions) != "map[v1:2 v2:1]" {
		t.Errorf("versions %v", versions)
	}
}
