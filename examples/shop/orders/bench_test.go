package orders_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/svckit/svckit/examples/shop/orders"
)

// cpuTime returns the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlaceOrder places one-item orders from 16 goroutines through the orders
// service with catalog and payments in the same process, each over its own SQLite store
// (the shop without its transports, NATS and telemetry): the business logic, the saga and
// the stores' statements and commits. It reports the CPU time per order (getrusage), the
// steadier figure on a shared machine.
//
//	go test -run '^$' -bench PlaceOrder -benchtime 3000x -count 5 ./examples/shop/orders/
func BenchmarkPlaceOrder(b *testing.B) {
	s := newShop(b)
	ctx := context.Background()
	items := []orders.Item{{ProductID: "sku-espresso", Quantity: 1}}
	b.SetParallelism(8) // 8 × GOMAXPROCS goroutines: 16 on 2 cores
	b.ResetTimer()
	start := cpuTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			o, err := s.orders.PlaceOrder(ctx, "ada", items, orders.NewID())
			if err != nil || o.Status != "confirmed" {
				b.Errorf("PlaceOrder = %+v, %v; want confirmed", o, err)
				return
			}
		}
	})
	b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-µs/order")
}
