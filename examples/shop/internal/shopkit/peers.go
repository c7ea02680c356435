package shopkit

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/balancer"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/dns"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// Peers is how a service finds the replicas of its peers, and how it is found by them.
// A peer's target (the value of ORDERS_GRPC_ADDRS and the like) is one of:
//
//	host:port,host:port            a fixed list, as `svckit dev` gives it (see [Dial])
//	natskv:                        the NATS KV registry on NATS_URL, under the peer's name
//	natskv:///NAME                 the same, under another service name
//	dns:///HOST:PORT               A/AAAA records of HOST, each address an instance on PORT
//	dns:///_grpc._tcp.NAME         SRV records of the name (a Kubernetes headless service)
//	dns://SERVER:PORT/…            the same, asking the DNS server at SERVER:PORT instead
//	                               of the system's resolver
//
// Instances found in a registry or in DNS are balanced by svckit's balancer (power of two
// choices, outlier ejection) over one gRPC connection per instance.
type Peers struct {
	app *svckit.App
	net Network

	mu  sync.Mutex
	reg *natskv.Registry
}

// NewPeers returns the Peers of app. When n.Announce is "natskv", the service's gRPC
// listener is announced in the NATS KV registry once the app is ready and withdrawn first
// thing at shutdown.
func NewPeers(ctx context.Context, app *svckit.App, n Network) (*Peers, error) {
	p := &Peers{app: app, net: n}
	switch n.Announce {
	case "":
	case "natskv":
		reg, err := p.registry(ctx)
		if err != nil {
			return nil, err
		}
		app.Announce(reg, nil)
	default:
		return nil, fmt.Errorf("announce %q: the registry must be natskv or empty", n.Announce)
	}
	return p, nil
}

// registry returns the NATS KV registry, connecting to NATS on first use.
func (p *Peers) registry(ctx context.Context) (*natskv.Registry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reg != nil {
		return p.reg, nil
	}
	if p.net.NATSURL == "" {
		return nil, fmt.Errorf("the natskv registry needs NATS_URL")
	}
	nc, err := nats.Connect(p.net.NATSURL, nats.Name(p.app.Name()+"-registry"),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("registry: connect %s: %w", p.net.NATSURL, err)
	}
	reg, err := natskv.New(ctx, nc, natskv.WithReplicas(max(1, p.net.NATSReplicas)), natskv.WithLogger(p.app.Logger()))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("registry: %w", err)
	}
	p.app.OnClose("registry", func(context.Context) error { nc.Close(); return nil })
	p.reg = reg
	return reg, nil
}

// Dial returns a connection to the replicas of peer found through target (see [Peers]),
// and closes it at shutdown. A fixed list is dialled as [Dial] does.
func (p *Peers) Dial(ctx context.Context, peer, target string) (grpc.ClientConnInterface, error) {
	target = strings.TrimSpace(target)
	var (
		w       discovery.Watcher
		service = peer
	)
	switch {
	case strings.HasPrefix(target, "natskv:"):
		if name := strings.TrimPrefix(strings.TrimPrefix(target, "natskv:"), "///"); name != "" {
			service = name
		}
		reg, err := p.registry(ctx)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", peer, err)
		}
		w = reg
	case strings.HasPrefix(target, "dns:"):
		u, err := url.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("peer %s: target %q: %w", peer, target, err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		if name == "" {
			return nil, fmt.Errorf("peer %s: target %q names no host:port or SRV name", peer, target)
		}
		opts := []dns.Option{dns.WithName(func(string) string { return name }), dns.WithLogger(p.app.Logger())}
		if u.Host != "" {
			opts = append(opts, dns.WithResolver(resolverAt(u.Host)))
		}
		w = dns.New(opts...)
	default:
		return Dial(p.app, peer, target)
	}
	watchCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ch, err := w.Watch(watchCtx, service)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("peer %s: %w", peer, err)
	}
	b := balancer.New(service)
	go b.Follow(ch)
	pool := balancer.NewConnPool(b, balancer.WithDial(func(addr string) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, p.app.DialCredentials(peer))
	}))
	p.app.OnClose("grpc-"+peer, func(context.Context) error {
		cancel()
		return pool.Close()
	})
	return &balancedConn{b: b, pool: pool}, nil
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

var _ grpc.ClientConnInterface = (*balancedConn)(nil)

// Invoke makes a unary call on the instance the balancer picks and reports the outcome.
func (c *balancedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	cc, done, err := c.pick(ctx)
	if err != nil {
		return err
	}
	err = cc.Invoke(ctx, method, args, reply, opts...)
	done(sgrpc.FromStatus(err))
	return err
}

// NewStream opens a stream on the instance the balancer picks; the balancer learns only
// whether the stream could be opened.
func (c *balancedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cc, done, err := c.pick(ctx)
	if err != nil {
		return nil, err
	}
	s, err := cc.NewStream(ctx, desc, method, opts...)
	done(sgrpc.FromStatus(err))
	return s, err
}

func (c *balancedConn) pick(ctx context.Context) (*grpc.ClientConn, func(error), error) {
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
