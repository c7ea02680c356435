// Command outboxbench measures svckit's durable event path on this machine, and the raw
// parts it is made of, in one run:
//
//	sqlite    raw SQLite commits of the same rows (an order and its outbox row per
//	          transaction), no relay: the ceiling the store puts on producers
//	          (with -postgres DSN, PostgreSQL instead, for this mode and outbox)
//	jetstream raw JetStream: async publish with Nats-Msg-Id, a durable pull consumer with
//	          explicit acks, on the embedded server
//	jetstream-batch
//	          the same, published as fast batches of -batch messages with one
//	          acknowledgement each, as the outbox relay publishes
//	jetstream-batch-ce
//	          the same with the eight headers pubsub gives an event (Nats-Msg-Id and the
//	          CloudEvents and key headers, set as pubsub sets them), the JetStream
//	          part of the outbox path with the same messages on the wire
//	outbox    end to end: producers commit an order and its event through outbox.Add,
//	          the relay publishes, a pubsub subscription consumes and acks; the
//	          subscription is a default one, which keeps each key's order (an event's key
//	          is its order number modulo -keys)
//	outbox-unordered
//	          the same with pubsub.Unordered(): keys' order given up
//	outbox-ordered
//	          the per-key order mode alone (-mode outbox runs both), for profiles
//
// The relay publishes fast batches, one acknowledgement per batch, where the server
// takes them; -no-batch-publish makes it wait for one per event, as before.
//
// For each it prints events/s, the p50/p99 latency (commit for sqlite; publish → consumer
// for jetstream; Add → consumer for outbox), and the process's CPU time per event, which
// on a shared, noisy machine is steadier than events/s, with the heap allocations, bytes
// and write system calls per event (the process's, engines included). The outbox modes also count
// per-key order violations: a key's event handled after a later event of the same key
// (by stream sequence). -rate paces the producers to measure latency below saturation;
// -rounds alternates the modes and prints medians.
//
//	go run ./bench/cmd/outboxbench                 # all four, 50,000 events each
//	go run ./bench/cmd/outboxbench -rounds 3 -rate 5000  # latency at 5,000 events/s
//	go run ./bench/cmd/outboxbench -n 20000 -mode outbox -rounds 5  # both outbox modes, alternated
//	go run ./bench/cmd/outboxbench -n 20000 -mode outbox-unordered -v
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	_ "github.com/svckit/svckit/store/sqlite" // the benchmark's store
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/gctune"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

var (
	n         = flag.Int("n", 50000, "events per mode")
	producers = flag.Int("producers", 32, "concurrent producer goroutines (transactions in flight, as from concurrent requests)")
	perTx     = flag.Int("per-tx", 1, "events per producer transaction")
	batch     = flag.Int("batch", 1000, "relay batch size")
	mode      = flag.String("mode", "all", "sqlite, jetstream, jetstream-batch, jetstream-batch-ce, outbox (both outbox modes), outbox-ordered (the per-key order mode alone), outbox-unordered, or all; a comma-separated list")
	keys      = flag.Int("keys", 100, "distinct event keys in the outbox modes")
	conc      = flag.Int("concurrency", 8, "handlers at once in the outbox modes' subscription")
	payload   = flag.Int("payload", 200, "event payload bytes")
	rounds    = flag.Int("rounds", 1, "rounds; the modes alternate within each round, and the median of each mode is printed at the end")
	rate      = flag.Int("rate", 0, "offered load in events/s, paced (0: as fast as possible); measures latency below saturation")
	pgDSN     = flag.String("postgres", "", "a postgres:// DSN: measure the store modes on PostgreSQL instead of SQLite (each run in a new schema)")
	verbose   = flag.Bool("v", false, "print progress details")
	cpuprof   = flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memprof   = flag.String("memprofile", "", "write an allocation profile of the run to this file")
	ceHeaders = flag.Bool("ce-headers", false, "raw JetStream modes: also send the CloudEvents and key headers that pubsub adds to each event (ce-id, ce-source, ce-type, ce-specversion, ce-time, content-type, svckit-key), to measure what they cost")
	overTCP   = flag.Bool("tcp", false, "connect the clients to the embedded NATS server over TCP on the loopback interface (as a service under svckit dev or in production connects) instead of in process (net.Pipe)")
	linger    = flag.Duration("linger", -1, "outbox modes: how long the relay waits after a wake-up for more events (outbox.Linger); negative: the relay's default (outbox.DefaultLinger)")
	noBatch   = flag.Bool("no-batch-publish", false, "outbox modes: the relay waits for an acknowledgement per event instead of publishing fast batches (pubsub.Config.NoBatchPublish)")
)

type result struct {
	name      string
	events    int
	elapsed   time.Duration
	cpu       time.Duration // process CPU time (user + system) during the run
	mallocs   uint64        // heap allocations during the run (the whole process: engines too)
	allocated uint64        // heap bytes allocated during the run
	writes    int64         // write system calls (write, pwrite…) during the run, -1 if unknown
	latencies []time.Duration
	// violations counts per-key order violations, -1 where not measured.
	violations int
}

// writeCalls returns how many write system calls the process has made (syscw in
// /proc/self/io), or -1 where that is not available.
func writeCalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r result) String() string {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(float64(len(r.latencies))*p))]
	}
	writes := ""
	if r.writes >= 0 {
		writes = fmt.Sprintf("  %.2f write syscalls/event", float64(r.writes)/float64(r.events))
	}
	order := ""
	if r.violations >= 0 {
		order = fmt.Sprintf("  %d per-key order violations", r.violations)
	}
	return fmt.Sprintf("%-16s %7d events %6.2fs %8.0f events/s  p50 %9s  p99 %9s  CPU %5.1fµs/event (%6.0f events per CPU-second)  %4.0f allocs %5.0f B/event%s",
		r.name, r.events, r.elapsed.Seconds(), float64(r.events)/r.elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond),
		float64(r.cpu.Microseconds())/float64(r.events), float64(r.events)/r.cpu.Seconds(),
		float64(r.mallocs)/float64(r.events), float64(r.allocated)/float64(r.events), order) + writes
}

func main() {
	flag.Parse()
	// The garbage collector's settings a service gets from svckit.Main (the heap floor of
	// GC_HEAP_FLOOR_MIB, none under GOGC), for every mode alike.
	gc, err := gctune.StartFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer gc.Stop()
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *memprof != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			f, err := os.Create(*memprof)
			if err != nil {
				log.Fatal(err)
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				log.Fatal(err)
			}
		}()
	}
	dir, err := os.MkdirTemp("", "outboxbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	body := make([]byte, *payload)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	pace := "as fast as possible"
	if *rate > 0 {
		pace = fmt.Sprintf("paced at %d events/s", *rate)
	}
	if *pgDSN != "" {
		pace += ", store on PostgreSQL"
	}
	fmt.Printf("outboxbench: %d events per mode, %s, %d producers, %d events per tx, relay batch %d, %d-byte payload, %d keys, concurrency %d, GOMAXPROCS %d\n",
		*n, pace, *producers, *perTx, *batch, *payload, *keys, *conc, runtimeProcs())
	modes := strings.Split(*mode, ",")
	selected := func(name string) bool {
		return slices.Contains(modes, "all") || slices.Contains(modes, name) ||
			(strings.HasPrefix(name, "outbox") && slices.Contains(modes, "outbox")) ||
			(name == "outbox" && slices.Contains(modes, "outbox-ordered"))
	}
	all := map[string][]result{}
	var order []string
	run := func(round int, name string, fn func(dir string) result) {
		if !selected(name) {
			return
		}
		if round == 0 {
			order = append(order, name)
		}
		d := filepath.Join(dir, fmt.Sprintf("%s-%d", name, round))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w := writeCalls()
		c := cpuTime()
		r := fn(d)
		r.cpu = cpuTime() - c
		if r.writes = -1; w >= 0 {
			r.writes = writeCalls() - w
		}
		runtime.ReadMemStats(&after)
		r.mallocs, r.allocated = after.Mallocs-before.Mallocs, after.TotalAlloc-before.TotalAlloc
		all[name] = append(all[name], r)
		fmt.Println(r)
		os.RemoveAll(d)
	}
	for round := range *rounds {
		if *rounds > 1 {
			fmt.Printf("round %d\n", round+1)
		}
		run(round, "sqlite", func(d string) result { return benchSQLite(ctx, d, body) })
		run(round, "jetstream", func(d string) result { return benchJetStream(ctx, d, body, false, *ceHeaders) })
		run(round, "jetstream-batch", func(d string) result { return benchJetStream(ctx, d, body, true, *ceHeaders) })
		run(round, "jetstream-batch-ce", func(d string) result { return benchJetStream(ctx, d, body, true, true) })
		run(round, "outbox", func(d string) result { return benchOutbox(ctx, d, body, true) })
		run(round, "outbox-unordered", func(d string) result { return benchOutbox(ctx, d, body, false) })
	}
	if *rounds > 1 {
		fmt.Println("median by events/s")
		for _, name := range order {
			rs := all[name]
			slices.SortFunc(rs, func(a, b result) int { return int(a.elapsed - b.elapsed) })
			fmt.Println(rs[len(rs)/2])
		}
		fmt.Println("median CPU per event (each mode's own median, which may be another round's)")
		for _, name := range order {
			var cpu []float64
			for _, r := range all[name] {
				cpu = append(cpu, float64(r.cpu.Microseconds())/float64(r.events))
			}
			slices.Sort(cpu)
			fmt.Printf("%-16s %5.1fµs/event\n", name, cpu[len(cpu)/2])
		}
	}
}

func openStore(ctx context.Context, dir string) *store.Store {
	dsn := "sqlite:" + filepath.Join(dir, "svc.db")
	if *pgDSN != "" {
		// A schema of its own for each run, so every run starts empty.
		admin, err := store.Open(ctx, *pgDSN)
		if err != nil {
			log.Fatal(err)
		}
		schema := fmt.Sprintf("outboxbench_%d", time.Now().UnixNano())
		if _, err := admin.DB().ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			log.Fatal(err)
		}
		admin.Close()
		sep := "?"
		if strings.Contains(*pgDSN, "?") {
			sep = "&"
		}
		dsn = *pgDSN + sep + "search_path=" + schema
	}
	st, err := store.Open(ctx, dsn, store.WithMaxOpenConns(max(16, *producers+4)))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL, body "+st.Dialect().BlobType()+")"); err != nil {
		log.Fatal(err)
	}
	return st
}

func prepare(ctx context.Context, st *store.Store, q string) *sql.Stmt {
	s, err := st.DB().PrepareContext(ctx, q)
	if err != nil {
		log.Fatal(err)
	}
	return s
}

// produce runs the producers until n events are committed; write adds one order and its
// event in tx. It returns the commit latencies.
func produce(ctx context.Context, st *store.Store, write func(tx *sql.Tx, i int) error) []time.Duration {
	var next atomic.Int64
	lat := make([][]time.Duration, *producers)
	begin := time.Now()
	var wg sync.WaitGroup
	for p := range *producers {
		wg.Go(func() {
			for {
				first := int(next.Add(int64(*perTx))) - *perTx
				if first >= *n {
					return
				}
				if *rate > 0 {
					time.Sleep(time.Until(begin.Add(time.Duration(first) * time.Second / time.Duration(*rate))))
				}
				start := time.Now()
				err := st.InTx(ctx, func(tx *sql.Tx) error {
					for i := first; i < min(first+*perTx, *n); i++ {
						if err := write(tx, i); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					log.Fatal(err)
				}
				lat[p] = append(lat[p], time.Since(start))
			}
		})
	}
	wg.Wait()
	return slices.Concat(lat...)
}

func benchSQLite(ctx context.Context, dir string, body []byte) result {
	st := openStore(ctx, dir)
	defer st.Close()
	if _, err := outbox.New(ctx, st); err != nil { // the same outbox table
		log.Fatal(err)
	}
	ins := prepare(ctx, st, st.Rebind("INSERT INTO outbox (id, subject, key, payload, headers, created_at) VALUES (?, ?, ?, ?, ?, ?)"))
	order := prepare(ctx, st, st.Rebind("INSERT INTO orders (id, amount, body) VALUES (?, ?, ?)"))
	start := time.Now()
	lat := produce(ctx, st, func(tx *sql.Tx, i int) error {
		if _, err := tx.StmtContext(ctx, order).ExecContext(ctx, i, i%100, body); err != nil {
			return err
		}
		_, err := tx.StmtContext(ctx, ins).ExecContext(ctx, "ev-"+strconv.Itoa(i), "events.orders.created", strconv.Itoa(i), body,
			"7:ce-time35:"+time.Now().UTC().Format("2006-01-02T15:04:05.000000000Z"), time.Now().UnixNano())
		return err
	})
	return result{name: st.Dialect().String(), events: *n, elapsed: time.Since(start), latencies: lat, violations: -1}
}

func startNATS(ctx context.Context, dir string) (*natsserver.Server, *nats.Conn) {
	srv, err := natsserver.Start(ctx, filepath.Join(dir, "nats"))
	if err != nil {
		log.Fatal(err)
	}
	var nc *nats.Conn
	if *overTCP {
		nc, err = nats.Connect(srv.ClientURL())
	} else {
		nc, err = srv.Connect()
	}
	if err != nil {
		log.Fatal(err)
	}
	return srv, nc
}

// benchJetStream runs the raw JetStream mode; batched publishes each batch as one fast
// batch with one acknowledgement (as the outbox relay does) instead of an
// acknowledgement per message; ce gives each message the headers pubsub gives it.
func benchJetStream(ctx context.Context, dir string, body []byte, batched, ce bool) result {
	srv, nc := startNATS(ctx, dir)
	defer srv.Shutdown(ctx)
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		log.Fatal(err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "RAW", Subjects: []string{"raw.>"}, Duplicates: 2 * time.Minute, AllowBatchPublish: batched})
	if err != nil {
		log.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1024})
	if err != nil {
		log.Fatal(err)
	}
	lat := make([]time.Duration, 0, *n)
	var got atomic.Int64
	done := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var sent time.Time
		if ce { // the time as pubsub's consumer reads it
			if v := m.Headers()[pubsub.HeaderTime]; len(v) > 0 {
				sent, _ = time.Parse(time.RFC3339Nano, v[0])
			}
		} else if t, err := strconv.ParseInt(m.Headers().Get("sent"), 10, 64); err == nil {
			sent = time.Unix(0, t)
		}
		lat = append(lat, time.Since(sent))
		m.Ack()
		if got.Add(1) == int64(*n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Stop()
	start := time.Now()
	if batched {
		publishFastBatches(nc, body, start, ce)
		<-done
		name := "jetstream-batch"
		if ce && !*ceHeaders {
			name = "jetstream-batch-ce"
		}
		return result{name: name, events: *n, elapsed: time.Since(start), latencies: lat, violations: -1}
	}
	for i := 0; i < *n; i += *batch {
		var futs []jetstream.PubAckFuture
		for j := i; j < min(i+*batch, *n); j++ {
			if *rate > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(j) * time.Second / time.Duration(*rate))))
			}
			m := &nats.Msg{Subject: "raw.orders", Data: body, Header: nats.Header{}}
			setHeaders(m.Header, j, ce)
			f, err := js.PublishMsgAsync(m, jetstream.WithMsgID("ev-"+strconv.Itoa(j)))
			if err != nil {
				log.Fatal(err)
			}
			futs = append(futs, f)
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				log.Fatal(err)
			}
		}
	}
	<-done
	return result{name: "jetstream", events: *n, elapsed: time.Since(start), latencies: lat, violations: -1}
}

// setHeaders gives event i the headers of a raw JetStream mode: with ce, the eight that
// pubsub gives an event — Nats-Msg-Id, ce-id, ce-source, ce-type, ce-specversion,
// ce-time, content-type, svckit-key — set the way pubsub sets them (names as they are,
// one value each; the consumer reads the latency from ce-time); otherwise Nats-Msg-Id
// and the time sent.
func setHeaders(h nats.Header, i int, ce bool) {
	id := "ev-" + strconv.Itoa(i)
	h[nats.MsgIdHdr] = []string{id}
	if !ce {
		h["sent"] = []string{strconv.FormatInt(time.Now().UnixNano(), 10)}
		return
	}
	h[pubsub.HeaderID] = []string{id}
	h[pubsub.HeaderSource] = []string{"outboxbench"}
	h[pubsub.HeaderType] = []string{"events.orders.created"}
	h[pubsub.HeaderSpecVersion] = []string{pubsub.SpecVersion}
	h[pubsub.HeaderTime] = []string{time.Now().UTC().Format(time.RFC3339Nano)}
	h[pubsub.HeaderContentType] = []string{"application/json"}
	h[pubsub.HeaderKey] = []string{strconv.Itoa(i % max(*keys, 1))}
}

// publishFastBatches publishes the -n messages as JetStream fast batches of -batch
// messages ("fail" gap mode, a flow-control message every 500), each with a
// Nats-Msg-Id, and waits for each batch's acknowledgement before the next, as the
// outbox relay does through pubsub.
func publishFastBatches(nc *nats.Conn, body []byte, start time.Time, ce bool) {
	inbox := nc.NewInbox()
	answers := make(chan []byte, 16)
	sub, err := nc.Subscribe(inbox+".>", func(m *nats.Msg) {
		if len(m.Data) > 8 && string(m.Data[:8]) == `{"type":` {
			return // flow control
		}
		answers <- m.Data
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Unsubscribe()
	for i, id := 0, 0; i < *n; i, id = i+*batch, id+1 {
		last := min(i+*batch, *n)
		base := inbox + "." + strconv.Itoa(id) + ".500.fail."
		for j := i; j < last; j++ {
			if *rate > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(j) * time.Second / time.Duration(*rate))))
			}
			op := "1"
			switch {
			case j == last-1:
				op = "2"
			case j == i:
				op = "0"
			}
			m := &nats.Msg{Subject: "raw.orders", Data: body, Header: nats.Header{},
				Reply: base + strconv.Itoa(j-i+1) + "." + op + ".$FI"}
			setHeaders(m.Header, j, ce)
			if err := nc.PublishMsg(m); err != nil {
				log.Fatal(err)
			}
		}
		select {
		case a := <-answers:
			if strings.Contains(string(a), `"error"`) {
				log.Fatalf("fast batch: %s", a)
			}
		case <-time.After(10 * time.Second):
			log.Fatal("fast batch: no acknowledgement")
		}
	}
}

// benchOutbox runs the end-to-end mode; ordered keeps each key's order in the
// subscription (the default), otherwise it is Unordered.
func benchOutbox(ctx context.Context, dir string, body []byte, ordered bool) result {
	st := openStore(ctx, dir)
	defer st.Close()
	ob, err := outbox.New(ctx, st)
	if err != nil {
		log.Fatal(err)
	}
	srv, nc := startNATS(ctx, dir)
	defer srv.Shutdown(ctx)
	defer nc.Close()
	bus, err := pubsub.New(ctx, nc, pubsub.Config{Source: "outboxbench", NoBatchPublish: *noBatch})
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, *n)
	seen := make(map[string]bool, *n)
	last := make(map[string]uint64, *keys) // per key: the stream sequence handled last
	violations := 0
	done := make(chan struct{})
	opts := []pubsub.SubscribeOption{pubsub.Concurrency(*conc), pubsub.MaxAckPending(4096)}
	name := "outbox"
	if !ordered {
		opts = append(opts, pubsub.Unordered())
		name = "outbox-unordered"
	}
	sub, err := bus.Subscribe(ctx, "events.orders.>", "bench", func(ctx context.Context, m *pubsub.Message) error {
		d := time.Since(m.Time)
		mu.Lock()
		defer mu.Unlock()
		if !seen[m.ID] { // an idempotent consumer
			seen[m.ID] = true
			lat = append(lat, d)
			if m.Sequence < last[m.Key] {
				violations++
			}
			last[m.Key] = max(last[m.Key], m.Sequence)
			if len(seen) == *n {
				close(done)
			}
		}
		return nil
	}, opts...)
	if err != nil {
		log.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	var pub pubsub.Publisher = bus
	tp := &timedPublisher{p: bus}
	if *verbose {
		pub = tp
		defer tp.report()
	}
	ropts := []outbox.RelayOption{outbox.BatchSize(*batch)}
	if *linger >= 0 {
		ropts = append(ropts, outbox.Linger(*linger))
	}
	go func() { relayDone <- ob.Relay(pub, ropts...).Run(rctx) }()
	order := prepare(ctx, st, st.Rebind("INSERT INTO orders (id, amount, body) VALUES (?, ?, ?)"))
	start := time.Now()
	produce(ctx, st, func(tx *sql.Tx, i int) error {
		if _, err := tx.StmtContext(ctx, order).ExecContext(ctx, i, i%100, body); err != nil {
			return err
		}
		return ob.Add(ctx, tx, &pubsub.Message{ID: "ev-" + strconv.Itoa(i), Subject: "events.orders.created", Key: strconv.Itoa(i % max(*keys, 1)), Data: body})
	})
	if *verbose {
		fmt.Printf("  producers committed %d events in %.2fs\n", *n, time.Since(start).Seconds())
	}
	<-done
	elapsed := time.Since(start)
	stop()
	<-relayDone
	sub.Stop(ctx)
	mu.Lock()
	defer mu.Unlock()
	return result{name: name, events: *n, elapsed: elapsed, latencies: lat, violations: violations}
}

// timedPublisher counts and times the relay's Publish calls, for -v.
type timedPublisher struct {
	p       pubsub.Publisher
	mu      sync.Mutex
	calls   int
	msgs    int
	total   time.Duration
	longest time.Duration
}

func (t *timedPublisher) Publish(ctx context.Context, msgs ...*pubsub.Message) error {
	start := time.Now()
	err := t.p.Publish(ctx, msgs...)
	d := time.Since(start)
	t.mu.Lock()
	t.calls++
	t.msgs += len(msgs)
	t.total += d
	t.longest = max(t.longest, d)
	t.mu.Unlock()
	return err
}

func (t *timedPublisher) report() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.calls == 0 {
		return
	}
	fmt.Printf("  relay: %d batches, %.1f events per batch, publish %s on average, %s at most\n",
		t.calls, float64(t.msgs)/float64(t.calls), (t.total / time.Duration(t.calls)).Round(time.Microsecond), t.longest.Round(time.Microsecond))
}
