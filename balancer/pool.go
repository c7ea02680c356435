package balancer

import (
	"errors"
	"fmt"
	"sync"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// ConnPool keeps one gRPC client connection per instance address for the factories of a
// [Dispatch] endpoint, and closes a connection a grace period after its address leaves
// the balancer's instance set, so that calls still in flight on it can finish.
type ConnPool struct {
	dial  func(addr string) (*grpcgo.ClientConn, error)
	grace time.Duration

	mu      sync.Mutex
	conns   map[string]*grpcgo.ClientConn
	leaving map[*grpcgo.ClientConn]*time.Timer
	closed  bool
}

// PoolOption configures a ConnPool.
type PoolOption func(*ConnPool)

// WithDial sets how connections are made; the default is grpc.NewClient(addr) with
// transport/grpc's DialOptions (fixed flow-control windows) and without transport
// security. Pass the options for TLS, interceptors or stats handlers here.
func WithDial(dial func(addr string) (*grpcgo.ClientConn, error)) PoolOption {
	return func(p *ConnPool) { p.dial = dial }
}

// WithGrace sets how long a connection stays open after its address left the set;
// default 5s.
func WithGrace(d time.Duration) PoolOption { return func(p *ConnPool) { p.grace = d } }

// NewConnPool returns a pool whose connections follow b's instance set.
func NewConnPool(b *Balancer, opts ...PoolOption) *ConnPool {
	p := &ConnPool{
		grace:   5 * time.Second,
		conns:   map[string]*grpcgo.ClientConn{},
		leaving: map[*grpcgo.ClientConn]*time.Timer{},
	}
	p.dial = func(addr string) (*grpcgo.ClientConn, error) {
		return grpcgo.NewClient(addr, append(sgrpc.DialOptions(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))...)
	}
	for _, o := range opts {
		o(p)
	}
	b.OnRemove(p.remove)
	return p
}

// ErrPoolClosed is returned by Get after Close.
var ErrPoolClosed = errors.New("balancer: connection pool closed")

// Get returns the connection to addr, making it on first use.
func (p *ConnPool) Get(addr string) (*grpcgo.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	if cc, ok := p.conns[addr]; ok {
		return cc, nil
	}
	cc, err := p.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("balancer: connecting to %s: %w", addr, err)
	}
	p.conns[addr] = cc
	return cc, nil
}

// Len returns the number of open connections, including those in their grace period.
func (p *ConnPool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) + len(p.leaving)
}

func (p *ConnPool) remove(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cc, ok := p.conns[addr]
	if !ok || p.closed {
		return
	}
	delete(p.conns, addr)
	p.leaving[cc] = time.AfterFunc(p.grace, func() {
		p.mu.Lock()
		_, still := p.leaving[cc]
		delete(p.leaving, cc)
		p.mu.Unlock()
		if still {
			_ = cc.Close()
		}
	})
}

// Close closes every connection; Get fails afterwards.
func (p *ConnPool) Close() error {
	p.mu.Lock()
	p.closed = true
	var all []*grpcgo.ClientConn
	for _, cc := range p.conns {
		all = append(all, cc)
	}
	for cc, t := range p.leaving {
		t.Stop()
		all = append(all, cc)
	}
	p.conns, p.leaving = map[string]*grpcgo.ClientConn{}, map[*grpcgo.ClientConn]*time.Timer{}
	p.mu.Unlock()
	var errs []error
	for _, cc := range all {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}
