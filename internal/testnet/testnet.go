// Package testnet gives tests loopback TCP ports that nothing else can take while a test
// uses them.
//
// The usual way to find an address where nothing listens — listen on port 0, note the
// port, close the listener — frees the port for anyone: another test process that asks
// for a port of its own may get it a moment later, and a call meant to be refused reaches
// a stranger instead (CI saw a gRPC client read a plain HTTP server's 404 that way). A
// [Reserved] port is held by a socket that is bound but not listening: connections to it
// are refused, no other socket can bind it, and [Reserved.Listen] turns the same socket
// into a listener, for a peer that "comes back" on its old address. [LowAddr] picks a port
// for a program that binds it itself.
package testnet

import (
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Reserved is a loopback TCP port held for one test. The zero value is not usable; call
// [Reserve].
type Reserved struct {
	addr string

	mu     sync.Mutex
	held   heldSocket // the bound socket, until Listen or Close
	closed bool
}

// Reserve binds a socket to a free port of 127.0.0.1 without listening on it and returns
// the reservation. Connections to its address are refused until [Reserved.Listen]. The
// socket is closed when the test ends, if Listen did not take it.
func Reserve(t testing.TB) *Reserved {
	t.Helper()
	held, addr, err := bindLoopback()
	if err != nil {
		t.Fatalf("testnet: reserving a loopback port: %v", err)
	}
	r := &Reserved{addr: addr, held: held}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Addr returns the reserved address, "127.0.0.1:port".
func (r *Reserved) Addr() string { return r.addr }

// Listen starts listening on the reserved port and returns the listener, which the caller
// closes. It can be called once.
func (r *Reserved) Listen() (net.Listener, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, net.ErrClosed
	}
	r.closed = true
	return r.held.listen()
}

// Close releases the port if Listen has not taken it.
func (r *Reserved) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return r.held.close()
}

// LowAddr picks ports from [lowFirst, lowEnd): below Linux's ephemeral range
// (32768–60999), from which the kernel hands out port 0.
const (
	lowFirst = 20000
	lowEnd   = 32000
)

// LowAddr returns "127.0.0.1:PORT" for a loopback port that was free when it checked, for
// a program that binds the port itself (a server run as a child process), which a
// [Reserved] port cannot serve. The port comes from below Linux's ephemeral range, so a
// socket another process binds to port 0 cannot take it between the check and the
// program's bind; two tests picking at the same moment collide only by chance (about one
// pick in 12,000). It is none of avoid, the addresses a test has picked already.
func LowAddr(t testing.TB, avoid ...string) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lowFirst+rand.IntN(lowEnd-lowFirst)))
		if slices.Contains(avoid, addr) {
			continue
		}
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("testnet: no free loopback port below the ephemeral range")
	return ""
}
