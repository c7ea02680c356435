package natsrpc_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/natsrpc"
)

// TestClusterNodeLoss runs a stream of calls from 8 callers on a 3-node cluster — two
// replicas of the service on nodes 0 and 1, the caller on node 2 — and shuts one node
// down in the middle: the node of a replica, or the caller's. Every call has a deadline
// of 3 s. Calls sent while the lost node's subscriptions are gone meet "no responders"
// and are sent again; calls the caller's connection buffered while it reconnects are sent
// after. What cannot be saved without knowing the method is idempotent is a call in
// flight at that moment whose request or reply went down with the node: such a call of a
// method that is not idempotent fails with DeadlineExceeded (at most about one per
// caller), and an idempotent method with an attempt timeout sends it again: none fails.
func TestClusterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	tests := []struct {
		name       string
		stop       int
		idempotent bool
		maxFailed  int64
	}{
		{"replica's node", 0, false, 16},
		{"caller's node", 2, false, 16},
		{"replica's node, idempotent", 0, true, 0},
		{"caller's node, idempotent", 2, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cl, err := natsserver.StartCluster(ctx, 3, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cl.Shutdown(context.Background()) })
			// Each connection starts on its own node and knows the others.
			connectTo := func(first int) *nats.Conn {
				urls := cl.URL(first)
				for i := range cl.Size() {
					if i != first {
						urls += "," + cl.URL(i)
					}
				}
				return connect(t, urls, nats.DontRandomize(), nats.MaxReconnects(-1),
					nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0),
					nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
			}
			var served [2]atomic.Int64
			for i := range served {
				srv := natsrpc.NewServer("calc")
				natsrpc.Handle(srv, "Sum", func(ctx context.Context, r sumReq) (sumResp, error) {
					served[i].Add(1)
					return sum(ctx, r)
				})
				serve(t, srv, connectTo(i))
			}
			var mopts []natsrpc.MethodOption
			if tt.idempotent {
				mopts = append(mopts, natsrpc.Idempotent())
			}
			call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(connectTo(2), "calc",
				natsrpc.WithAttemptTimeout(300*time.Millisecond)), "Sum", mopts...)

			var total, failed atomic.Int64
			var mu sync.Mutex
			var firstErrs []string
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Second)
						got, err := call(cctx, sumReq{A: w, B: i})
						ccancel()
						total.Add(1)
						if err == nil && got.V != w+i {
							err = fmt.Errorf("got %d, want %d", got.V, w+i)
						}
						if err != nil {
							if svcerr.KindOf(err) != svcerr.DeadlineExceeded {
								t.Errorf("call failed with %v, want only deadline_exceeded", err)
							}
							failed.Add(1)
							mu.Lock()
							if len(firstErrs) < 5 {
								firstErrs = append(firstErrs, err.Error())
							}
							mu.Unlock()
						}
					}
				})
			}
			waitFor(t, func() bool { return total.Load() >= 300 })
			before := total.Load()
			if err := cl.Stop(ctx, tt.stop); err != nil {
				t.Fatal(err)
			}
			stopped := total.Load()
			waitFor(t, func() bool { return total.Load() >= stopped+1000 })
			close(stop)
			wg.Wait()
			t.Logf("node %d stopped after %d calls: %d calls in all, %d failed; replicas served %d and %d",
				tt.stop, before, total.Load(), failed.Load(), served[0].Load(), served[1].Load())
			if failed.Load() > tt.maxFailed {
				t.Errorf("%d of %d calls failed (at most %d may), e.g. %q", failed.Load(), total.Load(), tt.maxFailed, firstErrs)
			}
		})
	}
}
