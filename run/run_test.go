package run_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svckit/svckit/health"
	"github.com/svckit/svckit/run"
)

// events is a concurrency-safe log of what happened, in order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(event string) {
	e.mu.Lock()
	e.list = append(e.list, event)
	e.mu.Unlock()
}

func (e *events) snapshot() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// before fails the test unless every event in first happened before every event in then.
func before(t *testing.T, log []string, first, then []string) {
	t.Helper()
	for _, a := range first {
		ia := slices.Index(log, a)
		if ia < 0 {
			t.Errorf("event %q missing from %q", a, log)
			continue
		}
		for _, b := range then {
			ib := slices.Index(log, b)
			if ib < 0 {
				t.Errorf("event %q missing from %q", b, log)
				continue
			}
			if ia > ib {
				t.Errorf("event %q happened after %q: %q", a, b, log)
			}
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newGroup returns a group that logs to the test and handles no signals.
func newGroup(t *testing.T, opts ...run.Option) *run.Group {
	return run.NewGroup(append([]run.Option{run.WithLogger(testLogger(t)), run.WithSignals()}, opts...)...)
}

// ctxActor is an actor that runs until its context is canceled.
func ctxActor(ev *events, name string) func(ctx context.Context) error {
	return startedActor(ev, name, nil)
}

// startedActor is a ctxActor that also sends on started once it runs.
func startedActor(ev *events, name string, started chan<- struct{}) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		ev.add("start " + name)
		if started != nil {
			started <- struct{}{}
		}
		<-ctx.Done()
		ev.add("exit " + name)
		return ctx.Err()
	}
}

func hookFn(ev *events, name string) func(ctx context.Context) error {
	return func(context.Context) error { ev.add(name); return nil }
}

func TestShutdownOrder(t *testing.T) {
	ev := &events{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g := newGroup(t)
	started := make(chan struct{}, 3)
	for _, name := range []string{"a", "b"} {
		g.Add(name, startedActor(ev, name, started), func(context.Context) error { ev.add("stop " + name); return nil })
	}
	g.Add("c", startedActor(ev, "c", started), nil) // stopped by canceling its context
	g.OnReady("gate", func(context.Context) error {
		for range 3 {
			<-started // as a readiness check would, wait for the actors to be up
		}
		ev.add("ready")
		cancel() // request the shutdown
		return nil
	})
	g.OnShutdown(run.PhaseNotReady, "nr1", hookFn(ev, "not ready 1"))
	g.OnShutdown(run.PhaseNotReady, "nr2", hookFn(ev, "not ready 2"))
	g.OnShutdown(run.PhaseDrain, "dh", hookFn(ev, "drain hook"))
	g.OnShutdown(run.PhaseClose, "db", hookFn(ev, "close db"))
	g.OnShutdown(run.PhaseClose, "cache", hookFn(ev, "close cache"))
	g.OnShutdown(run.PhaseFlush, "traces", hookFn(ev, "flush traces"))

	if err := g.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	log := ev.snapshot()
	t.Logf("events: %q", log)

	stops := []string{"stop a", "stop b", "drain hook"}
	exits := []string{"exit a", "exit b", "exit c"}
	before(t, log, []string{"start a", "start b", "start c"}, []string{"ready"})
	before(t, log, []string{"ready"}, []string{"not ready 2"})
	before(t, log, []string{"not ready 2"}, []string{"not ready 1"}) // reverse registration order
	before(t, log, []string{"not ready 1"}, append(stops, "exit c"))
	before(t, log, []string{"stop a"}, []string{"exit a"})
	before(t, log, []string{"stop b"}, []string{"exit b"})
	before(t, log, append(stops, exits...), []string{"close cache"})
	before(t, log, []string{"close cache"}, []string{"close db"}) // reverse registration order
	before(t, log, []string{"close db"}, []string{"flush traces"})
	if len(log) != 15 {
		t.Errorf("got %d events, want 15 (each exactly once): %q", len(log), log)
	}
}

// listen returns a loopback listener on a free port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func get(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestHTTPGracefulDrain shuts down a real HTTP server while slow requests are in flight:
// readiness flips first, while the server still accepts; every in-flight request then
// completes with 200, and Run returns nil.
func TestHTTPGracefulDrain(t *testing.T) {
	const inflight = 8
	ev := &events{}
	h := health.New(health.WithCacheTTL(0))
	started := make(chan struct{}, inflight)
	mux := http.NewServeMux()
	mux.Handle("/readyz", h.ReadyHandler())
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	ln := listen(t)
	base := "http://" + ln.Addr().String()
	srv := &http.Server{Handler: mux}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inflight}}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g := newGroup(t, run.WithShutdownTimeout(30*time.Second))
	serve, stop := run.HTTPServer(srv, ln)
	g.Add("api", serve, func(ctx context.Context) error {
		ev.add("http stop")
		return stop(ctx)
	})
	ready := make(chan struct{})
	g.OnReady("health", func(context.Context) error {
		h.SetReady(true)
		close(ready)
		return nil
	})
	var probeCode int
	var probeErr error
	g.OnShutdown(run.PhaseNotReady, "health", func(ctx context.Context) error {
		h.SetReady(false)
		ev.add("not ready")
		// The server still accepts connections and now answers not ready.
		probeCode, _, probeErr = get(ctx, &http.Client{}, base+"/readyz")
		return nil
	})

	runErr := make(chan error, 1)
	go func() { runErr <- g.Run(ctx) }()
	<-ready
	if code, body, err := get(t.Context(), client, base+"/readyz"); err != nil || code != 200 {
		t.Fatalf("readyz before shutdown = %d %q %v, want 200", code, body, err)
	}

	type result struct {
		code int
		body string
		err  error
	}
	results := make(chan result, inflight)
	for range inflight {
		go func() {
			code, body, err := get(context.Background(), client, base+"/slow")
			results <- result{code, body, err}
		}()
	}
	for range inflight {
		<-started // every request is being handled
	}
	cancel() // begin the shutdown, as SIGTERM would

	for range inflight {
		r := <-results
		if r.err != nil || r.code != http.StatusOK || r.body != "done" {
			t.Errorf("in-flight request = %d %q %v, want 200 \"done\"", r.code, r.body, r.err)
		}
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if probeErr != nil || probeCode != http.StatusServiceUnavailable {
		t.Errorf("readyz during PhaseNotReady = %d %v, want 503", probeCode, probeErr)
	}
	before(t, ev.snapshot(), []string{"not ready"}, []string{"http stop"})
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepts connections after Run returned")
	}
}

func TestShutdownDeadline(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	handlerStarted := make(chan struct{}, 1)

	tests := []struct {
		name      string
		actor     func(t *testing.T, g *run.Group) func() // adds "stuck"; returns what to do once Run started
		wantIsErr error
	}{
		{
			name: "stop ignores its deadline",
			actor: func(t *testing.T, g *run.Group) func() {
				g.Add("stuck", func(ctx context.Context) error { <-ctx.Done(); return nil },
					func(context.Context) error { <-release; return nil })
				return nil
			},
		},
		{
			name: "run does not return",
			actor: func(t *testing.T, g *run.Group) func() {
				g.Add("stuck", func(context.Context) error { <-release; return nil },
					func(context.Context) error { return nil })
				return nil
			},
		},
		{
			name: "http request outlives the deadline",
			actor: func(t *testing.T, g *run.Group) func() {
				mux := http.NewServeMux()
				mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
					handlerStarted <- struct{}{}
					<-release
				})
				ln := listen(t)
				serve, stop := run.HTTPServer(&http.Server{Handler: mux}, ln)
				g.Add("stuck", serve, stop)
				return func() {
					go get(context.Background(), &http.Client{}, "http://"+ln.Addr().String()+"/hang")
					<-handlerStarted
				}
			},
			wantIsErr: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &events{}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			g := newGroup(t, run.WithShutdownTimeout(100*time.Millisecond))
			g.Add("good", ctxActor(ev, "good"), nil)
			afterStart := tt.actor(t, g)
			ready := make(chan struct{})
			g.OnReady("r", func(context.Context) error { close(ready); return nil })
			g.OnShutdown(run.PhaseClose, "db", hookFn(ev, "close db"))
			g.OnShutdown(run.PhaseFlush, "traces", hookFn(ev, "flush traces"))

			runErr := make(chan error, 1)
			go func() { runErr <- g.Run(ctx) }()
			<-ready
			if afterStart != nil {
				afterStart()
			}
			cancel()
			err := <-runErr
			if err == nil {
				t.Fatal("Run = nil, want a deadline error")
			}
			if !strings.Contains(err.Error(), `actor "stuck" did not stop within 100ms`) {
				t.Errorf("Run = %v, want it to name the actor that did not stop", err)
			}
			if strings.Contains(err.Error(), `"good"`) {
				t.Errorf("Run = %v, blames the actor that stopped", err)
			}
			if tt.wantIsErr != nil && !errors.Is(err, tt.wantIsErr) {
				t.Errorf("Run = %v, want errors.Is %v", err, tt.wantIsErr)
			}
			// The later phases still ran.
			log := ev.snapshot()
			before(t, log, []string{"exit good"}, []string{"close db"})
			before(t, log, []string{"close db"}, []string{"flush traces"})
		})
	}
}

func TestActorExitStartsShutdown(t *testing.T) {
	errBind := errors.New("listen tcp :80: bind: address already in use")
	tests := []struct {
		name    string
		run     func(ctx context.Context) error
		wantErr error  // errors.Is target; nil means Run returns nil
		wantMsg string // substring of the error
	}{
		{"error at start", func(context.Context) error { return errBind }, errBind, `actor "failing"`},
		{"clean exit", func(context.Context) error { return nil }, nil, ""},
		{"panic", func(context.Context) error { panic("nil map") }, nil, `actor "failing": panic: nil map`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &events{}
			h := health.New()
			ln := listen(t)
			mux := http.NewServeMux()
			mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hi") })
			serve, stop := run.HTTPServer(&http.Server{Handler: mux}, ln)

			g := newGroup(t)
			g.Add("api", serve, func(ctx context.Context) error { ev.add("stop api"); return stop(ctx) })
			g.Add("failing", tt.run, nil)
			g.OnReady("health", func(context.Context) error { h.SetReady(true); return nil })
			g.OnShutdown(run.PhaseNotReady, "health", func(context.Context) error {
				h.SetReady(false)
				ev.add("not ready")
				return nil
			})
			g.OnShutdown(run.PhaseClose, "db", hookFn(ev, "close db"))

			// Nothing cancels this context: the failing actor alone must end Run.
			err := g.Run(t.Context())
			switch {
			case tt.wantErr == nil && tt.wantMsg == "":
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
			case err == nil:
				t.Fatal("Run = nil, want an error")
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Errorf("Run = %v, want errors.Is %v", err, tt.wantErr)
			case !strings.Contains(err.Error(), tt.wantMsg):
				t.Errorf("Run = %v, want it to contain %q", err, tt.wantMsg)
			}
			log := ev.snapshot()
			before(t, log, []string{"not ready"}, []string{"stop api"})
			before(t, log, []string{"stop api"}, []string{"close db"})
			if h.Ready(t.Context()).OK() {
				t.Error("still ready after Run returned")
			}
			if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				t.Error("HTTP listener still accepts connections after Run returned")
			}
		})
	}
}

func TestOnReadyError(t *testing.T) {
	ev := &events{}
	errReg := errors.New("registry unreachable")
	g := newGroup(t)
	g.Add("worker", ctxActor(ev, "worker"), nil)
	g.OnReady("register", func(context.Context) error { return errReg })
	g.OnReady("never", hookFn(ev, "second ready hook"))
	g.OnShutdown(run.PhaseClose, "db", hookFn(ev, "close db"))
	err := g.Run(t.Context())
	if !errors.Is(err, errReg) || !strings.Contains(err.Error(), `OnReady hook "register"`) {
		t.Fatalf("Run = %v, want the OnReady hook's error", err)
	}
	log := ev.snapshot()
	if slices.Contains(log, "second ready hook") {
		t.Error("OnReady hooks after the failing one ran")
	}
	before(t, log, []string{"exit worker"}, []string{"close db"})
}

func TestShutdownErrors(t *testing.T) {
	errClose := errors.New("close: database is locked")
	tests := []struct {
		name    string
		setup   func(g *run.Group)
		wantMsg string
	}{
		{"stop error", func(g *run.Group) {
			g.Add("w", func(ctx context.Context) error { <-ctx.Done(); return nil },
				func(context.Context) error { return errClose })
		}, `stopping actor "w"`},
		{"close hook error", func(g *run.Group) {
			g.OnShutdown(run.PhaseClose, "db", func(context.Context) error { return errClose })
		}, `close hook "db"`},
		{"flush hook panics", func(g *run.Group) {
			g.OnShutdown(run.PhaseFlush, "traces", func(context.Context) error { panic("exporter gone") })
		}, `flush hook "traces": panic: exporter gone`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &events{}
			ctx, cancel := context.WithCancel(t.Context())
			g := newGroup(t)
			tt.setup(g)
			g.OnReady("stop", func(context.Context) error { cancel(); return nil })
			g.OnShutdown(run.PhaseFlush, "last", hookFn(ev, "flush logs")) // runs first in its phase
			g.OnShutdown(run.PhaseFlush, "first", hookFn(ev, "flush metrics"))
			err := g.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.wantMsg)
			}
			if log := ev.snapshot(); !slices.Equal(log, []string{"flush metrics", "flush logs"}) {
				t.Errorf("flush hooks = %q, want both, in reverse registration order", log)
			}
		})
	}
}

func TestRunTwiceAndLateAdd(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	g := newGroup(t)
	if err := g.Run(ctx); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	if err := g.Run(ctx); err == nil {
		t.Error("second Run = nil, want an error")
	}
	defer func() {
		if recover() == nil {
			t.Error("Add after Run did not panic")
		}
	}()
	g.Add("late", func(context.Context) error { return nil }, nil)
}

func TestPhaseString(t *testing.T) {
	for p, want := range map[run.Phase]string{
		run.PhaseNotReady: "not_ready", run.PhaseDrain: "drain", run.PhaseClose: "close",
		run.PhaseFlush: "flush", run.Phase(9): "phase(9)",
	} {
		if got := p.String(); got != want {
			t.Errorf("Phase(%d).String() = %q, want %q", int(p), got, want)
		}
	}
}

func BenchmarkGroupRun(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	noop := func(context.Context) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		g := run.NewGroup(run.WithLogger(nil), run.WithSignals())
		g.Add("a", func(ctx context.Context) error { <-ctx.Done(); return nil }, noop)
		g.OnShutdown(run.PhaseClose, "c", noop)
		if err := g.Run(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
