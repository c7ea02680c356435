package http

import "net"

// ReadsInProgress returns the reads in progress on c, a connection from ProblemListener
// over TCP, for tests that need a read to be blocked.
func ReadsInProgress(c net.Conn) int32 {
	if pc, ok := c.(*problemTCPConn); ok {
		return pc.reading.Load()
	}
	return 0
}
