//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package http

import (
	"net"
	"syscall"
)

// inputPending reports whether bytes wait unread in c's receive buffer (a peek that
// neither blocks nor consumes them).
func inputPending(c *net.TCPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	pending := false
	if err := rc.Control(func(fd uintptr) { pending = peek(fd) }); err != nil {
		return false
	}
	return pending
}

// peek reports whether the socket fd has a byte to read, without blocking or consuming it.
func peek(fd uintptr) bool {
	var buf [1]byte
	n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == nil && n > 0
}
