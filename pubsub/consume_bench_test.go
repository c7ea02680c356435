//go:build unix

package pubsub_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/observe/otlp/otlptest"
	"github.com/svckit/svckit/pubsub"
)

// serverEnv, when set in the environment of this test binary, makes it a NATS server
// storing in that directory instead of running tests: it prints the client URL and runs
// until its standard input closes. BenchmarkConsume runs its server so, in a process of
// its own, so that the benchmark's CPU time is the consumer's alone.
const serverEnv = "PUBSUB_BENCH_NATS_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(serverEnv); dir != "" {
		os.Exit(serveNATS(dir))
	}
	os.Exit(m.Run())
}

func serveNATS(dir string) int {
	srv, err := natsserver.Start(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Shutdown(context.Background())
	return 0
}

// natsProcess starts this test binary as a NATS server in a process of its own and
// returns its client URL and its pid.
func natsProcess(b *testing.B) (url string, pid int) {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serverEnv+"="+filepath.Join(b.TempDir(), "js"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("nats server process: %v", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid
}

// processCPU returns the CPU time (user and system) of process pid, from /proc.
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0 // not Linux: the server's figure is left out
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// BenchmarkConsume consumes events from JetStream (a NATS server in a process of its own)
// two ways, in alternating blocks of 4,000 events published beforehand, and reports the
// consumer process's CPU time and heap allocations per event for each (getrusage,
// runtime/metrics: nats.go, the consumer, span export; the server's CPU separately):
//
//   - raw: a nats.go jetstream pull consumer with explicit acks, through Consume's
//     callback, that decodes the CloudEvents headers (parses ce-time) and acks;
//   - svckit: a pubsub subscription in a durable group, as the shop's notifications
//     service has it (concurrency 32, per-key order, at most 5 attempts) with
//     pubsub.Default's middleware: a span per event, sampled and exported over OTLP to a
//     loopback collector, the log record, metrics, recovery and a timeout, and a no-op
//     handler.
//
// The events are the shop's: a 150-byte JSON body, an order id as key (two events per
// key), and a traceparent. Each block subscribes, consumes its events and stops (drained,
// acks flushed), all inside the measurement. Run with -benchtime in events, such as
// 40000x.
func BenchmarkConsume(b *testing.B) {
	otlptest.Discard(b)
	url, pid := natsProcess(b)
	ctx := context.Background()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	bus, err := pubsub.New(ctx, nc, pubsub.Config{Stream: "BENCH", Subjects: []string{"bench.>"}, Source: "orders"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = bus.Close(ctx) }()
	tp, err := observe.NewTracerProvider(ctx, observe.TracingOptions{Service: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(ctx) }()
	metrics, err := pubsub.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	logs := observe.NewBufferedWriter(io.Discard, 64<<10, 100*time.Millisecond)
	defer func() { _ = logs.Close() }()
	logger := observe.NewLogger(logs, observe.LogOptions{Service: "bench"})
	mws := pubsub.Default(logger, tp, metrics, 10*time.Second)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}

	const block = 4000
	body := []byte(`{"orderId":"0123456789abcdef0123456789abcdef","customer":"customer-42","totalCents":1250,"items":[{"productId":"sku-espresso","quantity":1}]}`)
	seq := 0
	publish := func(subject string) {
		msgs := make([]*pubsub.Message, block)
		for i := range msgs {
			seq++
			msgs[i] = &pubsub.Message{Subject: subject, Key: "order-" + strconv.Itoa(seq/2), Type: "shop.order.placed", Data: body,
				Headers: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
		}
		if err := bus.Publish(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}

	var handled counter
	runSvckit := func() {
		sub, err := bus.Subscribe(ctx, "bench.kit.>", "notifications", func(context.Context, *pubsub.Message) error {
			handled.add()
			return nil
		}, pubsub.WithMiddleware(mws...), pubsub.MaxAttempts(5), pubsub.Concurrency(32))
		if err != nil {
			b.Fatal(err)
		}
		handled.wait(b)
		if err := sub.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var sink atomic.Int64
	runRaw := func() {
		cons, err := js.CreateOrUpdateConsumer(ctx, "BENCH", jetstream.ConsumerConfig{
			Durable: "raw", FilterSubject: "bench.raw.>", AckPolicy: jetstream.AckExplicitPolicy,
			AckWait: 30 * time.Second, MaxDeliver: -1, MaxAckPending: 1024,
		})
		if err != nil {
			b.Fatal(err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			h := m.Headers()
			id, typ, src := h.Get(pubsub.HeaderID), h.Get(pubsub.HeaderType), h.Get(pubsub.HeaderSource)
			at, _ := time.Parse(time.RFC3339Nano, h.Get(pubsub.HeaderTime))
			key, tpar, ct := h.Get(pubsub.HeaderKey), h.Get("traceparent"), h.Get(pubsub.HeaderContentType)
			sink.Add(int64(len(id)+len(typ)+len(src)+len(key)+len(tpar)+len(ct)+len(m.Data())) + at.UnixNano()&1)
			if err := m.Ack(); err != nil {
				b.Error(err)
			}
			handled.add()
		}, jetstream.PullMaxMessages(256), jetstream.PullExpiry(5*time.Second))
		if err != nil {
			b.Fatal(err)
		}
		handled.wait(b)
		cc.Drain()
		<-cc.Closed()
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}

	modes := []struct {
		name, subject string
		run           func()
	}{{"raw", "bench.raw.placed", runRaw}, {"svckit", "bench.kit.placed", runSvckit}}
	var cpu, srvCPU [2]time.Duration
	var heap [2]cpumeter.Heap
	var n [2]int
	round := func(measure bool) {
		for i, m := range modes {
			publish(m.subject)
			handled.reset(block)
			t0, s0, h0 := cpumeter.Process(), processCPU(b, pid), cpumeter.ReadHeap()
			// The label tells the two consumers' goroutines apart in a CPU profile (go tool
			// pprof -tagfocus mode=svckit); nats.go's read loop and the span exporter have none.
			pprof.Do(ctx, pprof.Labels("mode", m.name), func(context.Context) { m.run() })
			if measure {
				cpu[i] += cpumeter.Process() - t0
				srvCPU[i] += processCPU(b, pid) - s0
				heap[i] = heap[i].Add(cpumeter.ReadHeap().Sub(h0))
				n[i] += block
			}
		}
	}
	round(false) // warm up: consumers, connections, the span queue
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		round(true)
	}
	b.StopTimer()
	for i, m := range modes {
		b.ReportMetric(float64(cpu[i].Nanoseconds())/1e3/float64(n[i]), m.name+"-cpu-µs/event")
		b.ReportMetric(float64(heap[i].Objects)/float64(n[i]), m.name+"-allocs/event")
		b.ReportMetric(float64(srvCPU[i].Nanoseconds())/1e3/float64(n[i]), m.name+"-server-cpu-µs/event")
	}
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "svckit/raw-cpu")
}

// counter counts handled events and closes done when the target is reached.
type counter struct {
	n, target atomic.Int64
	done      chan struct{}
}

func (c *counter) reset(target int64) {
	c.done = make(chan struct{})
	c.n.Store(0)
	c.target.Store(target)
}

func (c *counter) add() {
	if c.n.Add(1) == c.target.Load() {
		close(c.done)
	}
}

// wait waits until the target is reached.
func (c *counter) wait(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		b.Fatalf("handled %d of %d events in a minute", c.n.Load(), c.target.Load())
	}
}
