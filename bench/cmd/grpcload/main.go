// Command grpcload drives unary addsvc.Add/Sum calls at a fixed concurrency for a fixed
// time and prints the rate and latency percentiles, like wrk does for HTTP.
//
//	grpcload -addr 127.0.0.1:18081 -c 64 -conns 4 -d 10s
//
// With -request-id, every call carries a new x-request-id, as a call through svckit's
// client does (it forwards the id of its request, or makes one): a svckit server then uses
// it. Without it, calls carry none, as a bare grpc-go client's do, and a svckit server
// generates one per call, which it would return only in the status of a failed call.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/examples/addsvc/pb"
	"github.com/svckit/svckit/transport/meta"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "server address")
	conc := flag.Int("c", 64, "concurrent callers")
	conns := flag.Int("conns", 4, "connections (callers are spread over them)")
	dur := flag.Duration("d", 10*time.Second, "duration")
	withID := flag.Bool("request-id", false, "send a new x-request-id with every call, as svckit's client does")
	flag.Parse()

	ccs := make([]*grpc.ClientConn, *conns)
	for i := range ccs {
		cc, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		defer cc.Close()
		ccs[i] = cc
	}
	// warm up and fail fast if the server is not there
	for _, cc := range ccs {
		var out pb.SumResponse
		if err := cc.Invoke(context.Background(), "/addsvc.Add/Sum", &pb.SumRequest{A: 1, B: 2}, &out); err != nil {
			log.Fatalf("warm-up call: %v", err)
		}
	}
	var ok, failed atomic.Int64
	lat := make([][]time.Duration, *conc)
	ctx, cancel := context.WithTimeout(context.Background(), *dur)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cc := ccs[w%len(ccs)]
			in := &pb.SumRequest{A: int64(w) + 1, B: 2}
			samples := make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil {
				t0 := time.Now()
				var out pb.SumResponse
				cctx := context.Background()
				if *withID {
					cctx = metadata.AppendToOutgoingContext(cctx, meta.RequestIDMetadataKey, meta.NewRequestID())
				}
				err := cc.Invoke(cctx, "/addsvc.Add/Sum", in, &out)
				if err != nil || out.V != in.A+in.B {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				if len(samples) < cap(samples) {
					samples = append(samples, time.Since(t0))
				}
			}
			lat[w] = samples
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, s := range lat {
		all = append(all, s...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(float64(len(all)-1)*p)]
	}
	fmt.Printf("requests/s: %.0f  ok: %d  failed: %d  p50: %v  p99: %v\n",
		float64(ok.Load())/elapsed.Seconds(), ok.Load(), failed.Load(), pct(0.50), pct(0.99))
}
