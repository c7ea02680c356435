package saga_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/svckit/svckit/internal/testnet"
	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// TestStepWaitsOutRestartingPeer runs a saga whose middle step calls a gRPC server on
// loopback that is not listening yet: every call fails with "connection refused"
// (Unavailable). The server starts about 3 s later, as a restarted peer does; the step
// keeps trying within its budget, and the saga completes instead of compensating.
func TestStepWaitsOutRestartingPeer(t *testing.T) {
	ctx := context.Background()
	port := testnet.Reserve(t) // nobody listens: connections are refused
	addr := port.Addr()
	cc, err := grpcgo.NewClient(addr, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	peer := healthpb.NewHealthClient(cc)

	var refused atomic.Int32
	var firstErr atomic.Value
	failed := make(chan struct{}, 1)
	var j journal
	def := saga.Define("restart",
		step(&j, "a", 0, 0),
		saga.Step[counter]{
			Name: "call-peer",
			Action: func(ctx context.Context, c *counter) error {
				_, err := peer.Check(ctx, &healthpb.HealthCheckRequest{})
				if err != nil {
					err = sgrpc.FromStatus(err)
					refused.Add(1)
					firstErr.CompareAndSwap(nil, err)
					select {
					case failed <- struct{}{}:
					default:
					}
					return err
				}
				c.Visited = append(c.Visited, "call-peer")
				return nil
			},
			Timeout:    5 * time.Second,
			Idempotent: true,
			Retry:      saga.Retry{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond},
			Budget:     2 * time.Minute, // generous: grpc-go's own reconnect backoff adds seconds
		},
	)

	// The peer comes back about 3 s after the first refused call.
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	srvCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	wg.Go(func() {
		select {
		case <-failed:
		case <-srvCtx.Done():
			return
		}
		select {
		case <-time.After(3 * time.Second):
		case <-srvCtx.Done():
			return
		}
		ln, err := port.Listen()
		if err != nil {
			t.Errorf("listen again on %s: %v", addr, err)
			return
		}
		g := grpcgo.NewServer()
		healthpb.RegisterHealthServer(g, health.NewServer())
		go func() { _ = g.Serve(ln) }()
		<-srvCtx.Done()
		g.Stop()
	})

	o := newOrchestrator(t, sqliteStore(t))
	id, err := saga.Start(ctx, o, def, counter{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := o.Wait(wctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != saga.Completed {
		t.Fatalf("state %s (error %q), want completed: the step gave up while its peer restarted", s.State, s.Error)
	}
	if refused.Load() < 2 {
		t.Fatalf("the peer refused %d calls; the test expects it down for several", refused.Load())
	}
	if k := svcerr.KindOf(firstErr.Load().(error)); k != svcerr.Unavailable {
		t.Errorf("a refused connection arrived as %s, want unavailable", k)
	}
	if got := j.get(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("calls %q: nothing was to be compensated", got)
	}
}

// TestStepFailureKinds checks which failures a step retries and which compensate: a
// business refusal compensates at once however long the budget, a transient failure is
// retried until it passes or the budget is spent, and a timeout is retried only for an
// idempotent step — the timed-out call of another may have taken effect, and a blind
// second call could take it twice.
func TestStepFailureKinds(t *testing.T) {
	unavailable := func() error { return svcerr.New(svcerr.Unavailable, "service unavailable") }
	tests := []struct {
		name       string
		err        func() error // what a failing attempt returns
		failures   int          // how many attempts fail; -1: all
		idempotent bool
		attempts   int // Retry.Attempts
		budget     time.Duration
		state      saga.State
		tries      int // attempts made; -1: more than one
	}{
		{"business refusal compensates at once", func() error {
			return svcerr.New(svcerr.FailedPrecondition, "payment declined")
		}, -1, true, 0, time.Minute, saga.Compensated, 1},
		{"not found compensates at once", func() error {
			return svcerr.New(svcerr.NotFound, "no such product")
		}, -1, true, 0, time.Minute, saga.Compensated, 1},
		{"permanent compensates at once", func() error {
			return saga.Permanent(svcerr.New(svcerr.Unavailable, "never coming back"))
		}, -1, true, 0, time.Minute, saga.Compensated, 1},
		{"unavailable is retried until it passes", unavailable, 4, false, 0, time.Minute, saga.Completed, 5},
		{"resource exhausted is retried until it passes", func() error {
			return svcerr.New(svcerr.ResourceExhausted, "slow down")
		}, 3, false, 0, time.Minute, saga.Completed, 4},
		{"exhausted budget compensates", unavailable, -1, false, 0, 300 * time.Millisecond, saga.Compensated, -1},
		{"negative budget retries nothing", unavailable, -1, false, 0, -1, saga.Compensated, 1},
		{"explicit attempts cap transient retries", unavailable, -1, false, 3, time.Minute, saga.Compensated, 3},
		{"timeout of an idempotent step is retried", func() error {
			return svcerr.New(svcerr.DeadlineExceeded, "deadline exceeded")
		}, 2, true, 0, time.Minute, saga.Completed, 3},
		{"timeout of a non-idempotent step is not retried", func() error {
			return svcerr.New(svcerr.DeadlineExceeded, "deadline exceeded")
		}, 2, false, 0, time.Minute, saga.Compensated, 1},
		{"context deadline of a non-idempotent step is not retried", func() error {
			return context.DeadlineExceeded
		}, 2, false, 0, time.Minute, saga.Compensated, 1},
		{"retry-after beyond the budget compensates", func() error {
			return svcerr.New(svcerr.ResourceExhausted, "slow down").WithMeta("retry_after", "3600")
		}, -1, true, 0, time.Minute, saga.Compensated, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var tries atomic.Int32
			var j journal
			def := saga.Define("kinds",
				step(&j, "a", 0, 0),
				saga.Step[counter]{
					Name: "b",
					Action: func(ctx context.Context, c *counter) error {
						if n := int(tries.Add(1)); tc.failures < 0 || n <= tc.failures {
							return tc.err()
						}
						return nil
					},
					Idempotent: tc.idempotent,
					Budget:     tc.budget,
					Retry:      saga.Retry{Attempts: tc.attempts, Initial: time.Millisecond, Max: 20 * time.Millisecond},
				},
			)
			o := newOrchestrator(t, sqliteStore(t), saga.WithCompensationBackoff(time.Millisecond))
			id, err := saga.Start(ctx, o, def, counter{})
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			s, err := o.Wait(wctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if s.State != tc.state {
				t.Fatalf("state %s (error %q), want %s", s.State, s.Error, tc.state)
			}
			n := int(tries.Load())
			if (tc.tries < 0 && n < 2) || (tc.tries >= 0 && n != tc.tries) {
				t.Errorf("%d attempts, want %d (-1: several)", n, tc.tries)
			}
			if want := []string{"a"}; tc.state == saga.Compensated {
				if got := j.get(); !slices.Equal(got, append(want, "undo a")) {
					t.Errorf("calls %q, want a compensated", got)
				}
			}
		})
	}
}

// TestRetryAfterHonoured fails a step once with ResourceExhausted and retry_after=1: the
// second attempt comes no sooner than the server asked (a lower bound only, which a
// loaded machine cannot break).
func TestRetryAfterHonoured(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var at []time.Time
	def := saga.Define("retry-after", saga.Step[counter]{
		Name: "a",
		Action: func(context.Context, *counter) error {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Now())
			if len(at) == 1 {
				return svcerr.New(svcerr.ResourceExhausted, "rate limited").WithMeta("retry_after", "1")
			}
			return nil
		},
		Retry: saga.Retry{Initial: time.Millisecond},
	})
	o := newOrchestrator(t, sqliteStore(t))
	id, err := saga.Start(ctx, o, def, counter{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := o.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if s.State != saga.Completed || len(at) != 2 {
		t.Fatalf("state %s after %d attempts, want completed after 2", s.State, len(at))
	}
	if gap := at[1].Sub(at[0]); gap < 900*time.Millisecond {
		t.Errorf("retried after %v, before the 1 s the server asked for", gap)
	}
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err        error
		idempotent bool
		want       bool
	}{
		{svcerr.New(svcerr.Unavailable, ""), false, true},
		{svcerr.New(svcerr.ResourceExhausted, ""), false, true},
		{svcerr.New(svcerr.Aborted, ""), false, true},
		{svcerr.New(svcerr.DeadlineExceeded, ""), true, true},
		{svcerr.New(svcerr.DeadlineExceeded, ""), false, false},
		{context.DeadlineExceeded, true, true},
		{svcerr.New(svcerr.FailedPrecondition, ""), true, false},
		{svcerr.New(svcerr.InvalidArgument, ""), true, false},
		{svcerr.New(svcerr.NotFound, ""), true, false},
		{svcerr.New(svcerr.PermissionDenied, ""), true, false},
		{svcerr.New(svcerr.Internal, ""), true, false},
		{context.Canceled, true, false},
		{saga.Permanent(svcerr.New(svcerr.Unavailable, "")), true, false},
		{nil, true, false},
	}
	for _, tc := range tests {
		if got := saga.Transient(tc.err, tc.idempotent); got != tc.want {
			t.Errorf("Transient(%v, %v) = %v, want %v", tc.err, tc.idempotent, got, tc.want)
		}
	}
}
