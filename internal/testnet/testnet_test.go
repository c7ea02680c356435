//go:build unix

package testnet_test

import (
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/testnet"
)

// TestReserved checks the three promises of a reservation: a connection is refused, no
// other listener can take the port, and Listen serves on it.
func TestReserved(t *testing.T) {
	r := testnet.Reserve(t)
	if _, err := net.DialTimeout("tcp", r.Addr(), time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", r.Addr(), err)
	}
	if ln, err := net.Listen("tcp", r.Addr()); err == nil {
		ln.Close()
		t.Fatalf("another listener took the reserved %s", r.Addr())
	}
	ln, err := r.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != r.Addr() {
		t.Fatalf("listening on %s, want %s", ln.Addr(), r.Addr())
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("ok"))
			c.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if b, err := io.ReadAll(c); string(b) != "ok" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := r.Listen(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Listen: %v, want net.ErrClosed", err)
	}
}

// TestReservedClose checks that Close frees the port.
func TestReservedClose(t *testing.T) {
	r := testnet.Reserve(t)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", r.Addr())
	if err != nil {
		t.Fatalf("the port stayed taken after Close: %v", err)
	}
	ln.Close()
}

// TestLowAddr checks that LowAddr's port is below the ephemeral range, free to bind, and
// none of the addresses to avoid.
func TestLowAddr(t *testing.T) {
	var picked []string
	for range 20 {
		addr := testnet.LowAddr(t, picked...)
		if slices.Contains(picked, addr) {
			t.Fatalf("LowAddr returned %s again", addr)
		}
		_, p, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if port, _ := strconv.Atoi(p); port < 20000 || port >= 32768 {
			t.Fatalf("LowAddr returned %s: not below the ephemeral range", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("LowAddr's %s cannot be bound: %v", addr, err)
		}
		ln.Close()
		picked = append(picked, addr)
	}
}
