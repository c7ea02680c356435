package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// CheckLoopback returns an error unless hostport (a host, or host:port) names loopback
// addresses only: an IP such as 127.0.0.1 or ::1, or a name that resolves to nothing
// else. An empty host is the local machine.
func CheckLoopback(ctx context.Context, hostport string) error {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("%s is not a loopback address", host)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.Unmap().IsLoopback() {
			return fmt.Errorf("%s resolves to %s, not a loopback address", host, a)
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s resolves to no address", host)
	}
	return nil
}
