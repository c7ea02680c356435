package discovery

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Announce registers inst in reg like reg.Register, but never fails: if the registry cannot
// be reached now, it keeps trying in the background, with exponential backoff and jitter
// (opts.MinBackoff to opts.MaxBackoff), until it succeeds or the returned Registration is
// deregistered. A service calls it once it is ready, so that it comes up even while the
// registry is down and becomes discoverable as soon as the registry is back. opts.Logger
// gets a warning per failed attempt.
func Announce(ctx context.Context, reg Registry, inst Instance, ttl time.Duration, opts KeepOptions) Registration {
	if inst.ID == "" {
		inst.ID = SafeID(inst.Addr)
	}
	opts.TTL = ttl
	opts = opts.withDefaults()
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &announcement{inst: inst, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for attempt := 0; ; attempt++ {
			r, err := reg.Register(loopCtx, inst, ttl)
			if err == nil {
				a.mu.Lock()
				a.reg = r
				a.mu.Unlock()
				return
			}
			if loopCtx.Err() != nil {
				return
			}
			opts.Logger.WarnContext(loopCtx, "discovery: registering failed; trying again",
				slog.String("service", inst.Service), slog.String("instance", inst.ID),
				slog.Int("attempt", attempt+1), slog.String("error", err.Error()))
			if !sleep(loopCtx, backoff(opts.MinBackoff, opts.MaxBackoff, attempt)) {
				return
			}
		}
	}()
	return a
}

type announcement struct {
	inst   Instance
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	reg Registration
}

func (a *announcement) Instance() Instance { return a.inst }

// Deregister stops the attempts and deregisters the registration, if one was made.
func (a *announcement) Deregister(ctx context.Context) error {
	a.cancel()
	select {
	case <-a.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	a.mu.Lock()
	r := a.reg
	a.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Deregister(ctx)
}

// Registered reports whether the announcement has been registered, for readiness checks
// and tests.
func Registered(r Registration) bool {
	a, ok := r.(*announcement)
	if !ok {
		return r != nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reg != nil
}

// AdvertiseAddr returns the address other processes reach a listener bound to bound at:
// bound itself when its host is a specific IP, or, for a wildcard host (":8081",
// "0.0.0.0", "::"), the first up, non-loopback IPv4 address of this host (or 127.0.0.1 when
// there is none) with bound's port.
func AdvertiseAddr(bound net.Addr) string {
	tcp, ok := bound.(*net.TCPAddr)
	if !ok {
		return bound.String()
	}
	if tcp.IP != nil && !tcp.IP.IsUnspecified() {
		return tcp.String()
	}
	return net.JoinHostPort(hostIP(), strconv.Itoa(tcp.Port))
}

// hostIP returns the first up, non-loopback IPv4 address of the host, or "127.0.0.1".
func hostIP() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}
