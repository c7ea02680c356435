package outbox_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

// TestNATSCrashServer's variables: the test binary runs it as the NATS server process
// of TestNATSCrashRelay.
const (
	envNATSChildDir  = "SVCKIT_OUTBOX_NATS_CHILD_DIR"
	envNATSChildPort = "SVCKIT_OUTBOX_NATS_CHILD_PORT"
	envNATSChildPass = "SVCKIT_OUTBOX_NATS_CHILD_PASS"
)

// natsProcess is a NATS server running in a child process on a fixed port and store
// directory, so that it can be SIGKILLed and started again where it was.
type natsProcess struct {
	dir, pass string
	port      int
	cmd       *exec.Cmd
}

// start starts the server process and waits until it accepts connections.
func (p *natsProcess) start(t *testing.T) {
	t.Helper()
	cmd := natsServerCommand(p.dir, p.port, p.pass)
	// The child prints "ready" on stdout, the real nats-server "Server is ready" on stderr.
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	err = cmd.Start()
	w.Close()
	if err != nil {
		out.Close()
		t.Fatal(err)
	}
	p.cmd = cmd
	ready := make(chan error, 1)
	go func() {
		defer out.Close()
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "ready") {
				ready <- nil
				_, _ = io.Copy(io.Discard, out)
				return
			}
			lines = append(lines, sc.Text())
		}
		ready <- fmt.Errorf("NATS server process ended before it was ready: %s", strings.Join(lines, "\n"))
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("NATS server process not ready after 30s")
	}
}

// kill SIGKILLs the server process and reaps it.
func (p *natsProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatal("the NATS server process ended on its own before the kill")
	}
}

// stop kills the server process if it runs, for the end of the test.
func (p *natsProcess) stop() {
	if p.cmd != nil && p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// url is the admin's URL of the server.
func (p *natsProcess) url() string {
	return natsserver.WithUserInfo("nats://127.0.0.1:"+strconv.Itoa(p.port), natsserver.AdminUser, p.pass)
}

// childServerCommand runs this test binary as TestNATSCrashServer: the embedded server in
// a process of its own.
func childServerCommand(dir string, port int, pass string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestNATSCrashServer$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), envNATSChildDir+"="+dir, envNATSChildPort+"="+strconv.Itoa(port), envNATSChildPass+"="+pass)
	return cmd
}

// TestNATSCrashServer is the NATS server process of TestNATSCrashRelay: it starts the
// embedded server, prints "ready" and runs until it is killed.
func TestNATSCrashServer(t *testing.T) {
	dir := os.Getenv(envNATSChildDir)
	if dir == "" {
		t.Skip("only run as TestNATSCrashRelay's NATS server")
	}
	port, err := strconv.Atoi(os.Getenv(envNATSChildPort))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := natsserver.Start(context.Background(), dir, natsserver.WithPort(port), natsserver.WithAdmin(os.Getenv(envNATSChildPass)))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	srv.Server().WaitForShutdown() // until killed
}

// loopbackPort returns a loopback TCP port that was free a moment ago.
func loopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNATSCrashRelay SIGKILLs the NATS server process (not the service) while an
// outbox relays thousands of events, starts it again on the same port and store
// directory, and checks that every event committed in the store reached a durable
// consumer at least once, and that the stream holds each exactly once (de-duplicated by
// message id). JetStream's default sync interval is kept: a process crash leaves what the
// server wrote in the OS's page cache, so nothing acknowledged is lost.
func TestNATSCrashRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	const events = 3000
	tests := []struct {
		name  string
		kills int
	}{
		{"one kill", 1},
		{"two kills", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { natsCrashRelay(t, events, tc.kills) })
	}
}

func natsCrashRelay(t *testing.T, events, kills int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	ns := &natsProcess{dir: filepath.Join(dir, "nats"), pass: natsserver.RandomPassword(), port: loopbackPort(t)}
	ns.start(t)
	defer ns.stop()

	quiet := slog.New(slog.DiscardHandler)
	bus, err := pubsub.Connect(ctx, pubsub.Config{URL: ns.url(), Source: "ncrash", AckTimeout: time.Second}, pubsub.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(context.Background())
	var mu sync.Mutex
	deliveries := map[string]int{}
	sub, err := bus.Subscribe(ctx, "events.ncrash.>", "ncrash", func(ctx context.Context, m *pubsub.Message) error {
		mu.Lock()
		defer mu.Unlock()
		deliveries[m.ID]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())

	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ob, err := outbox.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE orders (n INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	relay := ob.Relay(bus, outbox.BatchSize(50), outbox.PollInterval(20*time.Millisecond), outbox.RelayLogger(quiet))
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(rctx) }()
	defer func() {
		stopRelay()
		<-relayDone
	}()

	// Producers commit orders with their events, a few per transaction, while the
	// server is killed and started again.
	var next, committed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil && next.Load() < int64(events) {
				var added int64
				err := st.InTx(ctx, func(tx *sql.Tx) error {
					added = 0
					for range 5 {
						n := next.Add(1)
						if n > int64(events) {
							break
						}
						if _, err := tx.ExecContext(ctx, "INSERT INTO orders (n) VALUES (?)", n); err != nil {
							return err
						}
						if err := ob.Add(ctx, tx, &pubsub.Message{ID: "nc-" + strconv.FormatInt(n, 10), Subject: "events.ncrash.order", Key: strconv.FormatInt(n, 10)}); err != nil {
							return err
						}
						added++
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				committed.Add(added)
				time.Sleep(time.Millisecond) // spread the events over the kills
			}
		})
	}
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(deliveries)
	}
	before := 0 // events delivered when the server was last started
	for i := range kills {
		// Kill once part of the events is committed and the relay, back after the last
		// kill, has delivered more.
		for (committed.Load() < int64(events*(i+1)/(kills+1)) || delivered() <= before) && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		ns.kill(t)
		if n, err := ob.Pending(ctx); err == nil {
			mu.Lock()
			t.Logf("kill %d: %d events committed, %d of them not yet marked sent, %d distinct delivered", i+1, committed.Load(), n, len(deliveries))
			mu.Unlock()
		}
		time.Sleep(200 * time.Millisecond)
		ns.start(t)
		before = delivered()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// The relay drains the outbox, and the consumer receives every committed event.
	for {
		n, err := ob.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d events still unsent: %v", n, ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := map[string]bool{}
	rows, err := st.ReadDB().QueryContext(ctx, "SELECT n FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		want["nc-"+strconv.Itoa(n)] = true
	}
	rows.Close()
	lost := func() (missing int) {
		mu.Lock()
		defer mu.Unlock()
		for id := range want {
			if deliveries[id] == 0 {
				missing++
			}
		}
		return missing
	}
	for lost() > 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	stream, err := bus.JetStream().Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	si, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	missing, redelivered, stray := 0, 0, 0
	for id := range want {
		if deliveries[id] == 0 {
			missing++
		}
	}
	for id, c := range deliveries {
		redelivered += c - 1
		if !want[id] {
			stray++
		}
	}
	t.Logf("%d NATS kills, %d events committed, %d delivered (%d distinct, %d deliveries again), %d lost, stream holds %d",
		kills, len(want), total(deliveries), len(deliveries), redelivered, missing, si.State.Msgs)
	if len(want) != events {
		t.Errorf("%d events committed, want %d", len(want), events)
	}
	if missing != 0 || stray != 0 {
		t.Errorf("%d committed events never delivered, %d delivered events never committed", missing, stray)
	}
	if si.State.Msgs != uint64(len(want)) {
		t.Errorf("the stream holds %d messages for %d events: duplicates were not dropped by message id", si.State.Msgs, len(want))
	}
}
