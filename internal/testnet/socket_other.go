//go:build !unix

package testnet

import "net"

// heldSocket, where package syscall cannot bind a socket without listening, frees the
// port at once and listens on it again in listen: the reservation is only as good as
// listen-and-close.
type heldSocket struct{ addr string }

func bindLoopback() (heldSocket, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return heldSocket{}, "", err
	}
	addr := ln.Addr().String()
	return heldSocket{addr: addr}, addr, ln.Close()
}

func (h heldSocket) listen() (net.Listener, error) { return net.Listen("tcp", h.addr) }

func (heldSocket) close() error { return nil }
