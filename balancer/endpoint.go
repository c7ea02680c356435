package balancer

import (
	"context"
	"sync"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
)

type instanceKey struct{}

// WithInstance returns a context that carries the instance chosen for a call.
// [Balancer.Middleware] sets it; middleware inside it (a per-instance circuit breaker) and
// [Dispatch] read it with InstanceFrom.
func WithInstance(ctx context.Context, inst discovery.Instance) context.Context {
	return &instanceCtx{Context: ctx, inst: inst}
}

// instanceCtx carries the instance in the same allocation as the context. When addr is
// set (by Balancer.Middleware), it also answers resilience.InstanceKey with the instance's
// address, as resilience.WithInstance would in a context of its own.
type instanceCtx struct {
	context.Context
	inst discovery.Instance
	addr any // inst.Addr, converted once; nil if not set
}

func (c *instanceCtx) Value(key any) any {
	switch key.(type) {
	case instanceKey:
		return &c.inst
	case resilience.InstanceKey:
		if c.addr != nil {
			return c.addr
		}
	}
	return c.Context.Value(key)
}

// InstanceFrom returns the instance chosen for the call, or nil when none was.
func InstanceFrom(ctx context.Context) *discovery.Instance {
	i, _ := ctx.Value(instanceKey{}).(*discovery.Instance)
	return i
}

// Middleware returns client middleware that picks an instance for each call, puts it in the
// call's context for the middleware and endpoint inside it ([InstanceFrom], and
// resilience.InstanceFrom with its address, which resilience.Breaker keys its circuits
// on), and reports the call's outcome to the balancer. A call fails with an Unavailable
// error, and next is not called, when there is no instance. Put retry middleware outside
// it, so that each attempt picks anew, and per-instance middleware (a circuit breaker)
// inside it.
//
// A server-streaming endpoint of transport/grpc returns its stream before the call is
// made: the stream goes to the instance picked, but what the balancer learns is only that
// the stream was created, not how the call went.
func (b *Balancer) Middleware() endpoint.Middleware {
	return func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			p, err := b.start(ctx)
			if err != nil {
				return nil, err
			}
			resp, err := next(&instanceCtx{Context: ctx, inst: p.h.inst, addr: p.h.addr}, req)
			p.end(err)
			return resp, err
		}
	}
}

// Factory makes the endpoint that calls one instance, such as a method of a gRPC client on
// the instance's connection from a [ConnPool].
type Factory[Req, Resp any] func(inst discovery.Instance) (endpoint.Endpoint[Req, Resp], error)

// Dispatch returns an endpoint that calls the instance in the call's context (set by
// [Balancer.Middleware]) through the endpoint that factory made for its address. Endpoints
// are made on first use and forgotten when the address leaves b's instance set. Without an
// instance in the context, Dispatch picks one from b itself. A factory error fails the call
// with that error.
func Dispatch[Req, Resp any](b *Balancer, factory Factory[Req, Resp]) endpoint.Endpoint[Req, Resp] {
	c := &cache[endpoint.Endpoint[Req, Resp]]{m: map[string]endpoint.Endpoint[Req, Resp]{}}
	b.OnRemove(c.remove)
	call := func(ctx context.Context, inst *discovery.Instance, req Req) (Resp, error) {
		e, err := c.get(inst.Addr, func() (endpoint.Endpoint[Req, Resp], error) { return factory(*inst) })
		if err != nil {
			var zero Resp
			return zero, err
		}
		return e(ctx, req)
	}
	return func(ctx context.Context, req Req) (Resp, error) {
		if inst := InstanceFrom(ctx); inst != nil {
			return call(ctx, inst, req)
		}
		p, err := b.start(ctx)
		if err != nil {
			var zero Resp
			return zero, err
		}
		ictx := &instanceCtx{Context: ctx, inst: p.h.inst}
		resp, err := call(ictx, &ictx.inst, req)
		p.end(err)
		return resp, err
	}
}

// Endpoint returns a load-balanced client endpoint: [Attempts], then mws (outermost first:
// tracing, retry…), then b's Middleware, around [Dispatch] of factory. info describes the
// endpoint to the middleware; Client is set.
func Endpoint[Req, Resp any](info endpoint.Info, b *Balancer, factory Factory[Req, Resp], mws ...endpoint.Middleware) endpoint.Endpoint[Req, Resp] {
	info.Client = true
	chain := append(append([]endpoint.Middleware{Attempts()}, mws...), b.Middleware())
	return endpoint.Wrap(info, Dispatch(b, factory), chain...)
}

// cache holds one value per address.
type cache[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

func (c *cache[V]) get(addr string, make func() (V, error)) (V, error) {
	c.mu.RLock()
	v, ok := c.m[addr]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[addr]; ok {
		return v, nil
	}
	v, err := make()
	if err != nil {
		return v, err
	}
	c.m[addr] = v
	return v, nil
}

func (c *cache[V]) remove(addr string) {
	c.mu.Lock()
	delete(c.m, addr)
	c.mu.Unlock()
}
