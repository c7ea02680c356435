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
	var n int
	var buf [1]byte
	if cerr := rc.Control(func(fd uintptr) {
		n, _, err = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	}); cerr != nil || err != nil {
		return false
	}
	return n > 0
}
