package idempotency_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/idempotency"
	"github.com/svckit/svckit/svcerr"
)

// scripted is an endpoint whose runs the test steers through the context: a run waits
// on the gate in its context (if any), and panics or fails when told to.
type scripted struct {
	runs, running, maxRunning atomic.Int32
}

type gateCtx struct{}

// gate is what a run of scripted waits on: entered is closed when the run starts, and
// the run returns when release is closed.
type gate struct {
	entered, release chan struct{}
	panics           bool
	err              error
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (s *scripted) charge(ctx context.Context, req ChargeRequest) (ChargeResponse, error) {
	n := s.runs.Add(1)
	cur := s.running.Add(1)
	defer s.running.Add(-1)
	for {
		m := s.maxRunning.Load()
		if cur <= m || s.maxRunning.CompareAndSwap(m, cur) {
			break
		}
	}
	if g, ok := ctx.Value(gateCtx{}).(*gate); ok {
		close(g.entered)
		<-g.release
		if g.panics {
			panic("handler panics")
		}
		if g.err != nil {
			return ChargeResponse{}, g.err
		}
	}
	return ChargeResponse{ChargeID: fmt.Sprintf("ch_%d", n), Amount: req.Amount}, nil
}

var chargeInfo = endpoint.Info{Service: "payments", Method: "Charge", Transport: "inproc"}

// call runs e with key and g (nil: no gate) and sends its outcome on the returned channel.
func call(e endpoint.Endpoint[ChargeRequest, ChargeResponse], key string, g *gate, req ChargeRequest) <-chan result {
	out := make(chan result, 1)
	ctx := idempotency.WithKey(context.Background(), key)
	if g != nil {
		ctx = context.WithValue(ctx, gateCtx{}, g)
	}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				out <- result{panicked: true}
			}
		}()
		resp, err := e(ctx, req)
		out <- result{resp, err, false}
	}()
	return out
}

type result struct {
	resp     ChargeResponse
	err      error
	panicked bool
}

// outlive waits until a claim taken with lockTTL has certainly expired.
func outlive(lockTTL time.Duration) { time.Sleep(3 * lockTTL) }

const shortLock = 100 * time.Millisecond

// TestClaims checks that a request only settles the claim it took: a panic releases its
// key, and a request that outlived its claim neither overwrites nor releases the claim of
// the request that took the key over.
func TestClaims(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s idempotency.Store)
	}{
		{"PanicReleases", testPanicReleases},
		{"StaleCompleteKeepsNewerResult", testStaleComplete},
		{"StaleReleaseKeepsNewerClaim", testStaleRelease},
	}
	for _, sc := range stores {
		for _, tc := range tests {
			t.Run(sc.name+"/"+tc.name, func(t *testing.T) { tc.run(t, sc.open(t)) })
		}
	}
}

// testPanicReleases: a handler that panics releases its key at once, so a repeat runs
// instead of waiting out the lock TTL.
func testPanicReleases(t *testing.T, s idempotency.Store) {
	var ep scripted
	e := endpoint.Wrap(chargeInfo, ep.charge, idempotency.Middleware(s, idempotency.WithWait(200*time.Millisecond)))
	g := newGate()
	g.panics = true
	close(g.release)
	if r := <-call(e, "p", g, ChargeRequest{"acc", 5}); !r.panicked {
		t.Fatalf("the panic did not reach the caller: %+v", r)
	}
	r := <-call(e, "p", nil, ChargeRequest{"acc", 5})
	if r.err != nil || ep.runs.Load() != 2 {
		t.Fatalf("repeat after a panic: %+v, %d runs (want it to run)", r, ep.runs.Load())
	}
}

// testStaleComplete: request 1 outlives its claim, request 2 with a different payload
// takes the key over and completes; request 1 completing later must not replace
// request 2's result, which repeats of request 2 get.
func testStaleComplete(t *testing.T, s idempotency.Store) {
	var ep scripted
	short := endpoint.Wrap(chargeInfo, ep.charge, idempotency.Middleware(s, idempotency.WithLockTTL(shortLock)))
	long := endpoint.Wrap(chargeInfo, ep.charge, idempotency.Middleware(s))
	g1, g2 := newGate(), newGate()
	r1 := call(short, "k", g1, ChargeRequest{"acc", 1})
	<-g1.entered
	outlive(shortLock)
	r2 := call(long, "k", g2, ChargeRequest{"acc", 2})
	<-g2.entered
	close(g2.release)
	if r := <-r2; r.err != nil || r.resp.Amount != 2 {
		t.Fatalf("request 2: %+v", r)
	}
	close(g1.release)
	if r := <-r1; r.err != nil || r.resp.Amount != 1 {
		t.Fatalf("request 1 (its own response even though its claim was lost): %+v", r)
	}
	r := <-call(long, "k", nil, ChargeRequest{"acc", 2})
	if r.err != nil || r.resp.Amount != 2 {
		t.Fatalf("repeat of request 2 got %+v, want request 2's stored response", r)
	}
	if ep.runs.Load() != 2 {
		t.Fatalf("%d runs, want 2", ep.runs.Load())
	}
}

// testStaleRelease: request 1 outlives its claim and then fails with a transient error;
// its release must not free the key that request 2 holds, so request 3 does not run
// beside request 2.
func testStaleRelease(t *testing.T, s idempotency.Store) {
	var ep scripted
	short := endpoint.Wrap(chargeInfo, ep.charge, idempotency.Middleware(s, idempotency.WithLockTTL(shortLock)))
	long := endpoint.Wrap(chargeInfo, ep.charge, idempotency.Middleware(s, idempotency.WithWait(200*time.Millisecond)))
	g1, g2, g3 := newGate(), newGate(), newGate()
	close(g3.release)
	g1.err = svcerr.New(svcerr.Unavailable, "bank down")
	req := ChargeRequest{"acc", 7}
	r1 := call(short, "k", g1, req)
	<-g1.entered
	outlive(shortLock)
	r2 := call(long, "k", g2, req)
	<-g2.entered
	close(g1.release)
	if r := <-r1; svcerr.KindOf(r.err) != svcerr.Unavailable {
		t.Fatalf("request 1: %+v", r)
	}
	r3 := <-call(long, "k", g3, req)
	if svcerr.KindOf(r3.err) != svcerr.Aborted {
		t.Errorf("request 3 while request 2 runs: %+v, want Aborted (in progress)", r3)
	}
	close(g2.release)
	if r := <-r2; r.err != nil {
		t.Fatalf("request 2: %+v", r)
	}
	if ep.runs.Load() != 2 || ep.maxRunning.Load() != 2 {
		// Request 1 and 2 overlap by construction; a third concurrent run is the bug.
		t.Fatalf("%d runs, %d at once; want 2 runs", ep.runs.Load(), ep.maxRunning.Load())
	}
}
