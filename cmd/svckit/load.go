package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"time"

	"github.com/svckit/svckit/internal/loadgen"
)

// runLoad is `svckit load`: it places orders on the shop's gateway at a fixed concurrency
// and prints orders/s, p50, p99 and failures.
func runLoad(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("svckit load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "gateway URL, as printed by svckit dev (entry)")
	token := fs.String("token", os.Getenv("SVCKIT_TOKEN"), "bearer token, as printed by svckit dev (or $SVCKIT_TOKEN)")
	conc := fs.Int("c", 16, "concurrent clients")
	dur := fs.Duration("d", 30*time.Second, "duration")
	n := fs.Int64("n", 0, "stop after this many orders (0: no limit)")
	items := fs.String("items", `[{"productId":"sku-espresso","quantity":1},{"productId":"sku-filter","quantity":2}]`, "the order's items, JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: svckit load -url URL -token TOKEN [-c 16] [-d 30s] [-n 0]\n\nPlaces orders (POST /orders) on the shop's gateway and reports throughput and latency.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *url == "" || *token == "" {
		fmt.Fprintln(stderr, "svckit load: -url and -token are required (svckit dev prints both)")
		return 2
	}
	body := []byte(`{"items":` + *items + `}`)
	hdr := http.Header{"Authorization": {"Bearer " + *token}, "Content-Type": {"application/json"}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Fprintf(stdout, "placing orders on %s with %d clients for %s…\n", *url, *conc, *dur)
	res, err := loadgen.Run(ctx, loadgen.Options{
		Concurrency: *conc, Duration: *dur, Requests: *n,
		Next: func(int, int64) loadgen.Request {
			return loadgen.Request{URL: strings.TrimSuffix(*url, "/") + "/orders", Body: body, Header: hdr}
		},
		OK: func(status int, b []byte) bool {
			return status == http.StatusOK && strings.Contains(string(b), `"status":"confirmed"`)
		},
	})
	if err != nil {
		fmt.Fprintln(stderr, "svckit load:", err)
		return 1
	}
	fmt.Fprintf(stdout, "orders: %d in %s\norders/s: %.0f confirmed\np50: %s  p99: %s  max: %s\nfailures: %d\n",
		res.Requests, res.Elapsed.Round(time.Millisecond), res.Rate, res.P50.Round(10*time.Microsecond),
		res.P99.Round(10*time.Microsecond), res.Max.Round(10*time.Microsecond), res.Failures)
	if res.Failures > 0 {
		codes := make([]int, 0, len(res.FailedByStatus))
		for c := range res.FailedByStatus {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for _, c := range codes {
			switch c {
			case 0:
				fmt.Fprintf(stdout, "  no answer: %d\n", res.FailedByStatus[c])
			case http.StatusOK:
				fmt.Fprintf(stdout, "  status 200, not confirmed: %d\n", res.FailedByStatus[c])
			default:
				fmt.Fprintf(stdout, "  status %d: %d\n", c, res.FailedByStatus[c])
			}
		}
		fmt.Fprintf(stdout, "  last failure: %s\n", res.LastError)
	}
	return 0
}
