package devrun

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/cpumeter"
)

// discardResponse is a ResponseWriter that keeps nothing, so that the collector's own
// allocations are what a benchmark counts.
type discardResponse struct {
	h    http.Header
	code int
}

func (w *discardResponse) Header() http.Header         { return w.h }
func (w *discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardResponse) WriteHeader(code int)        { w.code = code }

// BenchmarkCollectShop is svckit dev's work per item of the shop's telemetry, the store
// full at its default retention (100,000 lines, 10,000 traces) as it is after the first
// minute or two of load:
//
//   - lines: a service's stdout, read line by line and stored (op: one access-log line;
//     cpu-ns/line is the process's CPU time per line, from getrusage);
//   - exports: OTLP/HTTP export requests through the collector's handler, each with the
//     spans of 16 orders of one service (op: one request; spans/op says how many spans,
//     ns/span, cpu-ns/span, B/span and allocs/span the cost per span);
//   - scrape: one /metrics scrape of the shop's gateway (testdata/scrape/gateway.txt, as
//     it answered under load) over loopback, parsed into the RED series' counters.
//
// Run it with
//
//	go test -run '^$' -bench CollectShop -benchmem ./internal/devrun/
func BenchmarkCollectShop(b *testing.B) {
	g := newOrderGen(b)
	traces0 := NewTraceStore(0) // shared by the rounds of "exports": filled once
	logs := NewLogStore(0)      // shared by the rounds of "lines"
	var text bytes.Buffer
	for n := range 4000 {
		_, lines := g.next(n)
		for _, l := range lines {
			text.WriteString(l[2])
			text.WriteByte('\n')
		}
	}
	all := text.Bytes()
	nlines := bytes.Count(all, []byte{'\n'})
	b.Run("lines", func(b *testing.B) {
		for logs.Len() < 100_000 { // full, as after a minute of load
			pumpBench(bytes.NewReader(all), logs)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := cpumeter.Process()
		for done := 0; done < b.N; done += nlines {
			r := bytes.NewReader(all)
			if left := b.N - done; left < nlines {
				r = bytes.NewReader(all[:nthLine(all, left)])
			}
			pumpBench(r, logs)
		}
		b.ReportMetric(float64(cpumeter.Process()-cpu)/float64(b.N), "cpu-ns/line")
	})
	b.Run("exports", func(b *testing.B) {
		// Bodies of 16 orders each; every export gets fresh trace ids (patched in place
		// where the template's are), so that each op stores new traces as under load.
		type export struct {
			body  []byte
			ids   [][]int // offsets of each order's trace id
			spans int
		}
		var exports []export
		spans := 0
		for n := 0; n < 1600; n += 16 {
			pending := map[string][]Span{}
			var traceIDs [][]byte
			for i := range 16 {
				bySvc, _ := g.next(n + i)
				for svc, sp := range bySvc {
					pending[svc] = append(pending[svc], sp...)
				}
				for _, sp := range bySvc {
					id, _ := hex.DecodeString(sp[0].TraceID)
					traceIDs = append(traceIDs, id)
					break
				}
			}
			for svc, sp := range pending {
				e := export{body: otlpBody(b, svc, sp), spans: len(sp)}
				for _, id := range traceIDs {
					var offs []int
					for off := 0; ; {
						k := bytes.Index(e.body[off:], id)
						if k < 0 {
							break
						}
						offs = append(offs, off+k)
						off += k + len(id)
					}
					e.ids = append(e.ids, offs)
				}
				exports = append(exports, e)
				spans += len(sp)
			}
		}
		h := traces0.OTLPHandler()
		hdr := http.Header{"Content-Type": {"application/x-protobuf"}}
		var seq uint64
		post := func(e export) {
			for _, offs := range e.ids {
				seq++
				for _, off := range offs {
					binary.BigEndian.PutUint64(e.body[off:], seq)
				}
			}
			r := &http.Request{Method: http.MethodPost, Header: hdr, Body: io.NopCloser(bytes.NewReader(e.body)), ContentLength: int64(len(e.body))}
			w := &discardResponse{h: http.Header{}}
			h.ServeHTTP(w, r)
			if w.code != 0 && w.code != http.StatusOK {
				b.Fatalf("export: %d", w.code)
			}
		}
		for i := 0; ; i++ { // full
			if n, _ := traces0.Stats(); n >= 10_000 {
				break
			}
			post(exports[i%len(exports)])
		}
		b.ReportAllocs()
		b.ResetTimer()
		start, cpu, heap := time.Now(), cpumeter.Process(), cpumeter.ReadHeap()
		posted := 0
		for i := 0; i < b.N; i++ {
			e := exports[i%len(exports)]
			post(e)
			posted += e.spans
		}
		wall, cpu, heap := time.Since(start), cpumeter.Process()-cpu, cpumeter.ReadHeap().Sub(heap)
		b.ReportMetric(float64(spans)/float64(len(exports)), "spans/op")
		b.ReportMetric(float64(wall)/float64(posted), "ns/span")
		b.ReportMetric(float64(cpu)/float64(posted), "cpu-ns/span")
		b.ReportMetric(float64(heap.Bytes)/float64(posted), "B/span")
		b.ReportMetric(float64(heap.Objects)/float64(posted), "allocs/span")
	})
	b.Run("scrape", func(b *testing.B) {
		page, err := os.ReadFile("testdata/scrape/gateway.txt")
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write(page)
		}))
		defer srv.Close()
		m := NewMetricsStore(&System{})
		addr := strings.TrimPrefix(srv.URL, "http://")
		b.ReportAllocs()
		for b.Loop() {
			sc, err := m.scrape(context.Background(), addr)
			if err != nil || len(sc.requests) == 0 {
				b.Fatalf("scrape: %v, %d series", err, len(sc.requests))
			}
		}
	})
}

// nthLine returns the length of the first n lines of text.
func nthLine(text []byte, n int) int {
	off := 0
	for range n {
		off += bytes.IndexByte(text[off:], '\n') + 1
	}
	return off
}
