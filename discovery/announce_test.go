package discovery_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/discoverytest"
)

// downRegistry fails Register while down is set.
type downRegistry struct {
	*discovery.Static
	down     atomic.Bool
	attempts atomic.Int32
}

func (r *downRegistry) Register(ctx context.Context, inst discovery.Instance, ttl time.Duration) (discovery.Registration, error) {
	r.attempts.Add(1)
	if r.down.Load() {
		return nil, errors.New("registry down")
	}
	return r.Static.Register(ctx, inst, ttl)
}

func TestAnnounce(t *testing.T) {
	reg := &downRegistry{Static: discovery.NewStatic()}
	reg.down.Store(true)
	ch, _ := reg.Watch(t.Context(), "svc")
	w := discoverytest.Follow(ch)
	opts := discovery.KeepOptions{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	a := discovery.Announce(t.Context(), reg, discovery.Instance{Service: "svc", Addr: "10.0.0.1:80"}, time.Second, opts)
	waitFor(t, func() bool { return reg.attempts.Load() >= 3 })
	if discovery.Registered(a) {
		t.Fatal("registered while the registry is down")
	}
	reg.down.Store(false)
	waitFor(t, func() bool { return discovery.Registered(a) })
	w.Expect(t, 5*time.Second, "10_0_0_1_80")
	if err := a.Deregister(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Expect(t, 5*time.Second)

	// Deregistered before the registry came back: the attempts stop.
	reg.down.Store(true)
	b := discovery.Announce(t.Context(), reg, discovery.Instance{Service: "svc", Addr: "10.0.0.2:80"}, time.Second, opts)
	if err := b.Deregister(t.Context()); err != nil {
		t.Fatal(err)
	}
	n := reg.attempts.Load()
	reg.down.Store(false)
	time.Sleep(20 * time.Millisecond)
	if reg.attempts.Load() != n || discovery.Registered(b) {
		t.Error("attempts went on after Deregister")
	}
}

func TestAdvertiseAddr(t *testing.T) {
	tests := []struct {
		bound    net.Addr
		want     string // exact, or "" for "some specific host with port 8081"
		wildcard bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 8081}, "10.1.2.3:8081", false},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 8081}, "[::1]:8081", false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 8081}, "", true},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8081}, "", true},
		{&net.TCPAddr{Port: 8081}, "", true},
	}
	for _, tt := range tests {
		got := discovery.AdvertiseAddr(tt.bound)
		if !tt.wildcard {
			if got != tt.want {
				t.Errorf("AdvertiseAddr(%v) = %q, want %q", tt.bound, got, tt.want)
			}
			continue
		}
		host, port, err := net.SplitHostPort(got)
		if err != nil || port != "8081" || host == "" || net.ParseIP(host).IsUnspecified() || strings.Contains(host, ":") {
			t.Errorf("AdvertiseAddr(%v) = %q, want a specific IPv4 host and port 8081", tt.bound, got)
		}
	}
}
