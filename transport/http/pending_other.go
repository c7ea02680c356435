//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package http

import "net"

// inputPending reports false: there is no portable peek here, so CloseIdle spares only a
// connection from which the server has read part of a request.
func inputPending(*net.TCPConn) bool { return false }
