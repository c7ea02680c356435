package outbox_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// The crash test's child process is this test binary running TestCrashChild with these
// variables set.
const (
	envChild = "SVCKIT_OUTBOX_CRASH_CHILD" // "produce" or "drain"
	envDB    = "SVCKIT_OUTBOX_CRASH_DB"
	envNATS  = "SVCKIT_OUTBOX_CRASH_NATS"
)

// crashKills is the number of SIGKILLs in TestCrashRelay; the integration build runs more.
var crashKills = 8

// TestCrashRelay runs a child process that writes orders with their events and relays
// them, SIGKILLs it at random moments, restarts it, and finally lets a child drain the
// outbox. The consumer (in this process) must then have received the event of every
// order that was committed, and nothing else, each exactly once.
func TestCrashRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	ctx := context.Background()
	dir := t.TempDir()
	srv, err := natsserver.Start(ctx, filepath.Join(dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	bus, err := pubsub.Connect(ctx, pubsub.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close(ctx)
	var mu sync.Mutex
	deliveries := map[string]int{} // raw deliveries per event id
	effects := map[string]bool{}   // what an idempotent consumer applied
	sub, err := bus.Subscribe(ctx, "events.crash.>", "crash", func(ctx context.Context, m *pubsub.Message) error {
		mu.Lock()
		defer mu.Unlock()
		deliveries[m.ID]++
		effects[m.ID] = true // applying twice has no further effect
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)

	dbPath := filepath.Join(dir, "svc.db")
	child := func(mode string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envChild+"="+mode, envDB+"="+dbPath, envNATS+"="+srv.ClientURL())
		cmd.Stderr = os.Stderr
		return cmd
	}
	// inFlight counts events that a killed child had published but not yet marked sent:
	// the next child publishes them again, and JetStream must drop the copies.
	inFlight := 0
	countInFlight := func() {
		st, err := store.Open(ctx, "sqlite:"+dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		// Unsent: above the relay's cursor.
		rows, err := st.ReadDB().QueryContext(ctx, "SELECT id FROM outbox WHERE seq > (SELECT seq FROM outbox_cursor)")
		if err != nil {
			return // no outbox table yet
		}
		defer rows.Close()
		time.Sleep(20 * time.Millisecond) // let deliveries of the last acks arrive
		mu.Lock()
		defer mu.Unlock()
		for rows.Next() {
			var id string
			if rows.Scan(&id) == nil && deliveries[id] > 0 {
				inFlight++
			}
		}
	}
	for i := range crashKills {
		cmd := child("produce")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The kill falls 100–500 ms after the child is producing and relaying, however
		// long it took to start on a loaded machine.
		lines := bufio.NewScanner(out)
		ready := false
		for !ready && lines.Scan() {
			ready = lines.Text() == "ready"
		}
		if !ready {
			_ = cmd.Wait()
			t.Fatalf("kill %d: child ended before it was ready", i)
		}
		go func() {
			for lines.Scan() {
			}
		}()
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("kill %d: child ended on its own before the kill: %v", i, err)
		}
		countInFlight()
	}
	drain := child("drain")
	drain.Stdout = os.Stdout
	if err := drain.Run(); err != nil {
		t.Fatalf("drain child: %v", err)
	}

	st, err := store.Open(ctx, "sqlite:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var unsent int
	committed := map[string]bool{}
	rows, err := st.ReadDB().Query("SELECT n FROM orders")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		committed["ev-"+strconv.Itoa(n)] = true
	}
	rows.Close()
	orders := len(committed)
	if err := st.ReadDB().QueryRow("SELECT COUNT(*) FROM outbox WHERE seq > (SELECT seq FROM outbox_cursor)").Scan(&unsent); err != nil {
		t.Fatal(err)
	}
	if orders == 0 || unsent != 0 {
		t.Fatalf("%d orders, %d unsent events", orders, unsent)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(effects)
		mu.Unlock()
		if n >= orders || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let stray duplicates arrive, if any
	mu.Lock()
	defer mu.Unlock()
	lost, dups := 0, 0
	for id := range committed {
		if !effects[id] {
			lost++
		}
	}
	for id, c := range deliveries {
		if c > 1 {
			dups++
		}
		if !committed[id] {
			t.Errorf("event %s delivered, but its order was never committed", id)
		}
	}
	info, err := bus.JetStream().Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	si, _ := info.Info(ctx)
	t.Logf("%d kills, %d orders committed, %d events delivered (%d distinct), %d lost, %d delivered twice, stream holds %d; "+
		"%d events were published but not marked sent when a child was killed (published again after the restart)",
		crashKills, orders, total(deliveries), len(effects), lost, dups, si.State.Msgs, inFlight)
	if lost != 0 || len(effects) != orders || dups != 0 || si.State.Msgs != uint64(orders) {
		t.Fatal("events lost or duplicated")
	}
}

func total(m map[string]int) (n int) {
	for _, c := range m {
		n += c
	}
	return n
}

// TestCrashChild is the child process of TestCrashRelay.
func TestCrashChild(t *testing.T) {
	mode := os.Getenv(envChild)
	if mode == "" {
		t.Skip("only run as TestCrashRelay's child")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, "sqlite:"+os.Getenv(envDB))
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE IF NOT EXISTS orders (n INTEGER PRIMARY KEY, amount INTEGER NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	bus, err := pubsub.Connect(ctx, pubsub.Config{URL: os.Getenv(envNATS), Source: "crash-child"})
	if err != nil {
		t.Fatal(err)
	}
	relay := ob.Relay(bus, outbox.BatchSize(50), outbox.LeaseTTL(300*time.Millisecond), outbox.PollInterval(20*time.Millisecond))
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(ctx) }()
	if mode == "drain" {
		for {
			n, err := ob.Pending(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-relayDone
		bus.Close(context.Background())
		return
	}
	var last int64
	if err := st.DB().QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM orders").Scan(&last); err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	next.Store(last)
	fmt.Println("ready")
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := st.InTx(ctx, func(tx *sql.Tx) error {
					for range 1 + rand.IntN(5) {
						n := next.Add(1)
						if _, err := tx.ExecContext(ctx, "INSERT INTO orders (n, amount) VALUES (?, ?)", n, n%100); err != nil {
							return err
						}
						if err := ob.Add(ctx, tx, &pubsub.Message{ID: "ev-" + strconv.FormatInt(n, 10), Subject: "events.crash.order", Key: fmt.Sprint(n)}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait() // until killed
}
