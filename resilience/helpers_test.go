package resilience_test

import (
	"context"
	"net"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// req and resp are the request and response of the test endpoints.
type req struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

type resp struct {
	V int64 `json:"v"`
}

// grpcService is the test service; it is not in the protobuf registry, so its methods are
// not checked against a descriptor. On the wire a request is the sum A+B.
const grpcService = "svckit.test.Adder"

func decReq(m *wrapperspb.Int64Value) (req, error)   { return req{A: m.GetValue()}, nil }
func encResp(r resp) (*wrapperspb.Int64Value, error) { return wrapperspb.Int64(r.V), nil }
func encReq(r req) (*wrapperspb.Int64Value, error)   { return wrapperspb.Int64(r.A + r.B), nil }
func decResp(m *wrapperspb.Int64Value) (resp, error) { return resp{V: m.GetValue()}, nil }

type sum = endpoint.Endpoint[req, resp]

// instance is a real loopback server whose behaviour a test sets.
type instance struct {
	url  string
	hits atomic.Int64
	// fail, when set, decides the outcome of the call with the given 1-based number.
	fail atomic.Pointer[func(n int64) error]
	hang atomic.Bool // when true, calls wait until the caller goes away
	// failFirst, when set, fails the first call of each request it returns true for.
	failFirst func(r req) bool
	seen      sync.Map // request A -> struct{}, for failFirst
}

func (in *instance) sum(ctx context.Context, r req) (resp, error) {
	n := in.hits.Add(1)
	if in.hang.Load() {
		<-ctx.Done()
		return resp{}, ctx.Err()
	}
	if in.failFirst != nil && in.failFirst(r) {
		if _, again := in.seen.LoadOrStore(r.A, struct{}{}); !again {
			return resp{}, errUnavailable
		}
	}
	if f := in.fail.Load(); f != nil {
		if err := (*f)(n); err != nil {
			return resp{}, err
		}
	}
	return resp{V: r.A + r.B}, nil
}

func (in *instance) setFail(f func(n int64) error) {
	if f == nil {
		in.fail.Store(nil)
		return
	}
	in.fail.Store(&f)
}

var errUnavailable = svcerr.New(svcerr.Unavailable, "injected failure")

// everyOther fails every second call: 50% of the calls.
func everyOther(n int64) error {
	if n%2 == 0 {
		return errUnavailable
	}
	return nil
}

func always(int64) error { return errUnavailable }

// startHTTP serves an instance over HTTP on a loopback port with server middleware mws.
func startHTTP(t testing.TB, mws ...endpoint.Middleware) *instance {
	t.Helper()
	in := &instance{}
	s := shttp.NewServer("sum", shttp.WithMiddleware(mws...))
	shttp.Handle(s, "PUT /sum", "Sum", in.sum)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	in.url = srv.URL
	return in
}

// httpClient returns a bare client endpoint (PUT: idempotent) for the instance at url.
func httpClient(t testing.TB, url string, mws ...endpoint.Middleware) sum {
	t.Helper()
	c, err := shttp.NewClient(url, "sum", shttp.WithClientMiddleware(mws...))
	if err != nil {
		t.Fatal(err)
	}
	return shttp.Call[req, resp](c, "PUT /sum", "Sum")
}

// startGRPC serves an instance over gRPC on a loopback port and returns a connection.
func startGRPC(t testing.TB, mws ...endpoint.Middleware) (*instance, *grpcgo.ClientConn) {
	t.Helper()
	in := &instance{}
	s := sgrpc.NewServer(grpcService, sgrpc.WithMiddleware(mws...))
	sgrpc.Unary(s, "Sum", in.sum,
		decReq,
		encResp)
	g := sgrpc.NewGRPCServer(nil)
	s.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	in.url = lis.Addr().String()
	return in, cc
}

func grpcClient(cc grpcgo.ClientConnInterface, mws ...endpoint.Middleware) sum {
	c := sgrpc.NewClient(cc, grpcService, sgrpc.WithClientMiddleware(mws...))
	return sgrpc.UnaryCall(c, "Sum",
		encReq,
		decResp,
		sgrpc.Idempotent())
}

// pool is a stand-in for the balancer: round robin over instances, skipping those whose
// circuit is open, naming the chosen one with resilience.WithInstance.
type pool struct {
	addrs   []string
	calls   map[string]sum
	breaker *resilience.Breaker
	next    atomic.Uint64
}

func newPool(b *resilience.Breaker, targets map[string]sum) *pool {
	p := &pool{calls: targets, breaker: b}
	for a := range targets {
		p.addrs = append(p.addrs, a)
	}
	return p
}

// pick is middleware that chooses the instance of each attempt.
func (p *pool) pick(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, r any) (any, error) {
		var addr string
		for range p.addrs {
			addr = p.addrs[p.next.Add(1)%uint64(len(p.addrs))]
			if p.breaker == nil || p.breaker.Allow(addr) {
				break
			}
		}
		return next(resilience.WithInstance(ctx, addr), r)
	}
}

// call is the innermost endpoint: it calls the instance the attempt was given.
func (p *pool) call(ctx context.Context, r req) (resp, error) {
	return p.calls[resilience.InstanceFrom(ctx)](ctx, r)
}

// endpoint returns the pool as a client endpoint wrapped, outermost first, in mws.
func (p *pool) endpoint(mws ...endpoint.Middleware) sum {
	info := endpoint.Info{Service: "sum", Method: "Sum", Transport: "http", Client: true, Idempotent: true}
	return endpoint.Wrap(info, p.call, mws...)
}
