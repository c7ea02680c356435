//go:build unix

package http_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/internal/cpumeter"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/observe/otlp/otlptest"
	"github.com/svckit/svckit/resilience"
	shttp "github.com/svckit/svckit/transport/http"
)

// BenchmarkLoopbackStack serves POST /sum over loopback TCP through a bare net/http
// handler (json.Decoder with a body limit, json.Encoder, no server timeouts, as
// bench/cmd/benchserver's bare-http) and through svckit's server with App's default chain
// and listener: every span sampled and exported over OTLP to a loopback collector, the
// JSON access log through a BufferedWriter, RED metrics, timeout, recovery, request id
// echoed, ProblemListener, header, read and idle timeouts. Raw keep-alive clients (16
// connections) load one server at a time in alternating blocks of 400 requests, so the
// machine's changing load falls on both alike; it reports the process's CPU time per
// request (getrusage: server, clients and span export) for each, and their difference,
// svckit's CPU per request over bare. Run with -benchtime in requests, such as 40000x.
func BenchmarkLoopbackStack(b *testing.B) {
	otlptest.Discard(b)
	tp, err := observe.NewTracerProvider(context.Background(), observe.TracingOptions{Service: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	if tp.Lean() == nil {
		b.Fatal("not the lean provider")
	}
	m, err := observe.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	logs := observe.NewBufferedWriter(io.Discard, 64<<10, 100*time.Millisecond)
	defer func() { _ = logs.Close() }()
	logger := observe.NewLogger(logs, observe.LogOptions{Service: "bench"})
	kit := shttp.NewServer("bench",
		shttp.WithMiddleware(observe.Tracing(tp), observe.AccessLog(logger), m.Middleware(),
			resilience.Timeout(30*time.Second), resilience.Recover(logger)),
		shttp.WithRejectMiddleware(observe.AccessLog(logger), m.Middleware()),
		shttp.WithLogger(logger))
	shttp.Handle(kit, "POST /sum", "Sum", func(_ context.Context, r sumReq) (sumResp, error) {
		return sumResp{V: r.A + r.B}, nil
	})
	bare := http.NewServeMux()
	bare.HandleFunc("POST /sum", bareSum)
	bareAddr := serveLoopback(b, &http.Server{Handler: bare}, false)
	kitAddr := serveLoopback(b, &http.Server{Handler: kit, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}, true)

	const conns, block = 16, 400
	clients := [2]*loopClients{dialLoop(b, bareAddr, conns), dialLoop(b, kitAddr, conns)}
	for _, c := range clients { // warm up: connections, pools, the span queue
		c.run(b, 4*block)
	}
	var cpu [2]time.Duration
	var n [2]int
	b.ResetTimer()
	for done := 0; done < b.N; done += 2 * block {
		for i, c := range clients {
			t0 := cpumeter.Process()
			c.run(b, block)
			cpu[i] += cpumeter.Process() - t0
			n[i] += block
		}
	}
	b.StopTimer()
	bareUS := float64(cpu[0].Microseconds()) / float64(n[0])
	kitUS := float64(cpu[1].Microseconds()) / float64(n[1])
	b.ReportMetric(bareUS, "bare-cpu-µs/req")
	b.ReportMetric(kitUS, "svckit-cpu-µs/req")
	b.ReportMetric(kitUS-bareUS, "overhead-cpu-µs/req")
}

// serveLoopback serves srv on a loopback port until the benchmark ends, through
// ProblemListener when wrap is set, and returns the address.
func serveLoopback(b *testing.B, srv *http.Server, wrap bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	if wrap {
		ln = shttp.ProblemListener(ln)
	}
	name := "bare"
	if wrap {
		name = "svckit"
	}
	// The label tells the two servers' goroutines apart in a CPU profile
	// (go tool pprof -tagfocus server=svckit).
	go pprof.Do(context.Background(), pprof.Labels("server", name), func(context.Context) { _ = srv.Serve(ln) })
	b.Cleanup(func() { _ = srv.Close() })
	return addr
}

// loopClients are keep-alive connections that each send one request at a time.
type loopClients struct {
	conns []*loopConn
}

type loopConn struct {
	c   net.Conn
	r   *bufio.Reader
	req []byte
}

func dialLoop(b *testing.B, addr string, n int) *loopClients {
	req := []byte("POST /sum HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\n" +
		"Content-Length: 13\r\n\r\n{\"a\":1,\"b\":2}")
	lc := &loopClients{}
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		lc.conns = append(lc.conns, &loopConn{c: c, r: bufio.NewReader(c), req: req})
	}
	return lc
}

// run sends total requests spread over the connections and checks each response.
func (lc *loopClients) run(b *testing.B, total int) {
	var wg sync.WaitGroup
	errs := make(chan error, len(lc.conns))
	per := total / len(lc.conns)
	for _, c := range lc.conns {
		wg.Go(func() {
			for range per {
				if err := c.roundTrip(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// roundTrip writes the request and reads a 200 response with a Content-Length body.
func (c *loopConn) roundTrip() error {
	if _, err := c.c.Write(c.req); err != nil {
		return err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		line, err = c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return err
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("no Content-Length")
	}
	_, err = c.r.Discard(length)
	return err
}
