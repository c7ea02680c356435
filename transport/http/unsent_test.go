package http_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/testnet"
	shttp "github.com/svckit/svckit/transport/http"
)

// TestClientWaitsForRestartingServer calls a POST route on a server that is down and
// starts a second later: the request, which never left, is sent again and succeeds
// within the caller's deadline, once.
func TestClientWaitsForRestartingServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var calls atomic.Int32
	srv := shttp.NewServer("greeter")
	shttp.Handle(srv, "POST /greet", "Greet", func(_ context.Context, r greetRequest) (greetResponse, error) {
		calls.Add(1)
		return greet(context.Background(), r)
	})
	// The server starts a second later on its own goroutine, with its own variables; the
	// test closes it through the channel when it ends.
	started := make(chan *http.Server, 1)
	t.Cleanup(func() {
		select {
		case hs := <-started:
			_ = hs.Close()
		default:
		}
	})
	time.AfterFunc(time.Second, func() {
		for range 100 {
			l, lerr := net.Listen("tcp", addr)
			if lerr == nil {
				hs := &http.Server{Handler: srv}
				started <- hs
				_ = hs.Serve(l)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	c, err := shttp.NewClient("http://"+addr, "greeter")
	if err != nil {
		t.Fatal(err)
	}
	call := shttp.Call[greetRequest, greetResponse](c, "POST /greet", "Greet")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := call(ctx, greetRequest{Name: "ada"})
	if err != nil || out.Greeting != "hello, ada" {
		t.Fatalf("call: %+v, %v", out, err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the endpoint ran %d times, want 1", n)
	}

	// A call to a server that never comes back ends with its deadline, as unavailable
	// or deadline exceeded, not sooner.
	deadAddr := testnet.Reserve(t).Addr()
	c2, _ := shttp.NewClient("http://"+deadAddr, "greeter")
	call2 := shttp.Call[greetRequest, greetResponse](c2, "POST /greet", "Greet")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	start := time.Now()
	if _, err := call2(ctx2, greetRequest{Name: "x"}); err == nil {
		t.Fatal("a call to a dead server succeeded")
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Errorf("gave up after %v, before the deadline", time.Since(start))
	}
}
