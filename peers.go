package svckit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/dns"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// Dial returns a connection to the replicas of the service peer, found through target,
// and closes it at shutdown. Calls through it carry mTLS when the service has it (see
// [App.DialCredentials]); wrap it in the peer's generated client with
// [App.GRPCClientOptions] for the client middleware. target is, as a setting such as
// CATALOG_GRPC_ADDRS holds it:
//
//	host:port,host:port            a fixed list, as `svckit dev` gives it; gRPC balances
//	                               the calls round-robin over one connection per address
//	natskv:                        the NATS KV registry on NATS_URL, under the peer's name
//	natskv:///NAME                 the same, under another service name
//	dns:///HOST:PORT               A/AAAA records of HOST, each address an instance on PORT
//	dns:///_grpc._tcp.NAME         SRV records of the name (a Kubernetes headless service)
//	dns://SERVER:PORT/…            the same, asking the DNS server at SERVER:PORT instead
//	                               of the system's resolver
//
// Instances found in a registry or in DNS are balanced by package balancer (power of two
// choices on in-flight calls and latency, outlier ejection) over one gRPC connection per
// instance, and follow the registry as instances come and go.
//
// A call that never left is made again within its deadline, even for a method that is
// not idempotent, since it cannot have run: while the peer has no ready instance (its
// only replica restarting) the call waits for one (gRPC's wait-for-ready on a fixed list),
// and a call refused at connect by one instance goes to another after a short backoff.
// A call that reached an instance and failed there is not repeated here; that is the
// retry middleware's decision, bounded by its budget.
func (a *App) Dial(ctx context.Context, peer, target string) (grpcgo.ClientConnInterface, error) {
	target = strings.TrimSpace(target)
	var (
		w       discovery.Watcher
		service = peer
	)
	switch {
	case target == "":
		return nil, fmt.Errorf("svckit: peer %s: no target: set %s_GRPC_ADDRS to host:port,…, natskv: or dns:///…", peer, envName(peer))
	case strings.HasPrefix(target, "natskv:"):
		if name := strings.TrimPrefix(strings.TrimPrefix(target, "natskv:"), "///"); name != "" {
			service = name
		}
		reg, err := a.registry(ctx)
		if err != nil {
			return nil, fmt.Errorf("svckit: peer %s: %w", peer, err)
		}
		w = reg
	case strings.HasPrefix(target, "dns:"):
		u, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("svckit: peer %s: target %q: %w", peer, target, err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		if name == "" {
			return nil, fmt.Errorf("svckit: peer %s: target %q names no host:port or SRV name", peer, target)
		}
		opts := []dns.Option{dns.WithName(func(string) string { return name }), dns.WithLogger(a.logger)}
		if u.Host != "" {
			opts = append(opts, dns.WithResolver(resolverAt(u.Host)))
		}
		w = dns.New(opts...)
	case strings.Contains(target, "://"):
		return nil, fmt.Errorf("svckit: peer %s: target %q: want host:port,…, natskv: or dns:///…", peer, target)
	default:
		return a.dialList(peer, target)
	}
	watchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := w.Watch(watchCtx, service)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("svckit: peer %s: %w", peer, err)
	}
	b := balancer.New(service)
	go b.Follow(ch)
	pool := balancer.NewConnPool(b, balancer.WithDial(func(addr string) (*grpcgo.ClientConn, error) {
		return grpcgo.NewClient(addr, append(sgrpc.DialOptions(), a.DialCredentials(peer), reconnect())...)
	}))
	// The pool's connections fail fast: a refused call is retried by balancedConn on
	// another instance rather than waiting for this one.
	a.OnClose("grpc-"+peer, func(context.Context) error {
		cancel()
		return pool.Close()
	})
	return &balancedConn{b: b, pool: pool}, nil
}

// dialList dials a fixed, comma-separated list of addresses, balanced round-robin by gRPC.
func (a *App) dialList(peer, addrs string) (*grpcgo.ClientConn, error) {
	var list []resolver.Address
	for _, s := range strings.Split(addrs, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("svckit: peer %s: address %q: %w", peer, s, err)
		}
		list = append(list, resolver.Address{Addr: s})
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("svckit: peer %s: no address: set %s_GRPC_ADDRS", peer, envName(peer))
	}
	r := manual.NewBuilderWithScheme("svckit-" + strings.ToLower(envName(peer)))
	r.InitialState(resolver.State{Addresses: list})
	cc, err := grpcgo.NewClient(r.Scheme()+":///"+peer, append(sgrpc.DialOptions(),
		grpcgo.WithResolvers(r),
		a.DialCredentials(peer),
		reconnect(),
		grpcgo.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		// A call waits for a ready instance within its deadline instead of failing at
		// once while every instance is down (a single replica restarting); round robin
		// sends it only to instances whose connection is up, so it never left if it waits.
		grpcgo.WithDefaultCallOptions(grpcgo.WaitForReady(true)))...)
	if err != nil {
		return nil, fmt.Errorf("svckit: peer %s: %w", peer, err)
	}
	a.OnClose("grpc-"+peer, func(context.Context) error { return cc.Close() })
	return cc, nil
}

// reconnect makes gRPC try a lost instance again soon: from 100 ms, growing to at most
// 2 s, instead of grpc-go's default of 1 s growing to 2 minutes, so that a peer that
// restarted is reached within a second or two.
func reconnect() grpcgo.DialOption {
	return grpcgo.WithConnectParams(grpcgo.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
		MinConnectTimeout: 5 * time.Second,
	})
}

// envName is the upper-snake form of a service name, as in CATALOG_GRPC_ADDRS.
func envName(service string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(service))
}

// resolverAt returns a resolver that asks the DNS server at addr.
func resolverAt(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// balancedConn is a gRPC connection to a service whose every call goes to the instance
// that its balancer picks, over that instance's connection from the pool.
type balancedConn struct {
	b    *balancer.Balancer
	pool *balancer.ConnPool
}

var _ grpcgo.ClientConnInterface = (*balancedConn)(nil)

// Invoke makes a unary call on the instance the balancer picks and reports the outcome.
// A call that never left — no instance, or its instance refused the connection — is
// made again, on another instance if there is one, after a backoff with jitter, until it
// leaves or ctx ends: it cannot have run, so this is safe for any method, and a peer
// whose only replica restarts is waited for rather than failed (wait-for-ready).
func (c *balancedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpcgo.CallOption) error {
	ctx = balancer.NewCall(ctx)
	return retryUnsent(ctx, func() error {
		cc, done, err := c.pick(ctx)
		if err != nil {
			return err
		}
		err = cc.Invoke(ctx, method, args, reply, opts...)
		done(sgrpc.FromStatus(err))
		return err
	})
}

// NewStream opens a stream on the instance the balancer picks, trying again as Invoke
// does while the stream could not leave; the balancer learns only whether the stream
// could be opened.
func (c *balancedConn) NewStream(ctx context.Context, desc *grpcgo.StreamDesc, method string, opts ...grpcgo.CallOption) (grpcgo.ClientStream, error) {
	ctx = balancer.NewCall(ctx)
	var s grpcgo.ClientStream
	err := retryUnsent(ctx, func() error {
		cc, done, err := c.pick(ctx)
		if err != nil {
			return err
		}
		s, err = cc.NewStream(ctx, desc, method, opts...)
		done(sgrpc.FromStatus(err))
		return err
	})
	return s, err
}

// retryUnsent runs call until it returns an error other than one that proves the call
// never left the process ([unsent]), or nil, or ctx ends; between attempts it waits a
// backoff that starts at 10 ms, doubles up to 500 ms and is jittered by ±50%. The last
// error is returned when ctx ends, or after unsentWait for a ctx without a deadline.
func retryUnsent(ctx context.Context, call func() error) error {
	backoff := 10 * time.Millisecond
	var giveUp time.Time
	if _, ok := ctx.Deadline(); !ok {
		giveUp = time.Now().Add(unsentWait)
	}
	for {
		err := call()
		if err == nil || !unsent(err) || (!giveUp.IsZero() && time.Now().After(giveUp)) {
			return err
		}
		wait := backoff/2 + rand.N(backoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// unsentWait bounds the retries of a call without a deadline.
const unsentWait = 3 * time.Second

// unsent reports whether err proves that a call never reached a server: the balancer
// had no instance or no connection to it, or gRPC could not connect (refused, or
// unreachable). Errors after the connection was up — a reset, a timeout — may follow a
// call that ran, and are not retried here.
func unsent(err error) bool {
	if errors.Is(err, balancer.ErrNoInstances) {
		return true
	}
	var se *svcerr.Error
	if errors.As(err, &se) && se.Kind == svcerr.Unavailable && strings.HasPrefix(se.Message, "no connection to ") {
		return true
	}
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	msg := st.Message()
	return strings.Contains(msg, "Error while dialing") || strings.Contains(msg, "connection refused")
}

func (c *balancedConn) pick(ctx context.Context) (*grpcgo.ClientConn, func(error), error) {
	inst, done, err := c.b.Pick(ctx)
	if err != nil {
		return nil, nil, err
	}
	cc, err := c.pool.Get(inst.Addr)
	if err != nil {
		err = svcerr.Wrap(svcerr.Unavailable, "no connection to "+inst.Addr, err)
		done(err)
		return nil, nil, err
	}
	return cc, done, nil
}
