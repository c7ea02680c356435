//go:build unix

package testnet

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// heldSocket is a TCP socket bound to a loopback port, not listening. It does not set
// SO_REUSEADDR, so no other socket can bind the port, with or without that option.
type heldSocket struct{ fd int }

func bindLoopback() (heldSocket, string, error) {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return heldSocket{}, "", fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = syscall.Close(fd)
		return heldSocket{}, "", fmt.Errorf("bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		return heldSocket{}, "", fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		_ = syscall.Close(fd)
		return heldSocket{}, "", fmt.Errorf("getsockname: %T", sa)
	}
	return heldSocket{fd: fd}, fmt.Sprintf("127.0.0.1:%d", in4.Port), nil
}

func (h heldSocket) listen() (net.Listener, error) {
	if err := syscall.Listen(h.fd, syscall.SOMAXCONN); err != nil {
		_ = syscall.Close(h.fd)
		return nil, fmt.Errorf("listen: %w", err)
	}
	f := os.NewFile(uintptr(h.fd), "testnet")
	defer f.Close() // FileListener works on its own copy of the descriptor
	return net.FileListener(f)
}

func (h heldSocket) close() error { return syscall.Close(h.fd) }
