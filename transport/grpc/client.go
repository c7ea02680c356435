package grpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"

	"go.opentelemetry.io/otel/propagation"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// WindowSize and ConnWindowSize are the HTTP/2 flow-control windows of svckit's gRPC
// connections, per stream and per connection, in bytes: [DialOptions] sets them on
// clients and [NewGRPCServer] on servers. Fixed windows turn off grpc-go's bandwidth-delay
// estimation, which otherwise sends a PING, and has it acknowledged, whenever a side
// receives data after the last estimate was taken: on sequential unary calls that is two
// PINGs and two acknowledgements per call. With both ends fixed, a bare grpc-go call over
// loopback used about 6 µs less CPU (111 → 105 µs per call, client and server, medians of
// 5 runs of alternated blocks on a loaded machine). At 1 MiB per stream a call moves a
// megabyte per round trip — a gigabyte a second at a millisecond of latency — and the
// estimation grows windows to 16 MiB at most, so only bulk transfers over long
// high-latency links would notice.
const (
	WindowSize     = 1 << 20
	ConnWindowSize = 2 << 20
)

// DialOptions returns svckit's default options for a client connection, to pass to
// grpc.NewClient beside the credentials ([DialCredentials]): the fixed flow-control
// windows of [WindowSize].
//
//	cc, err := grpcgo.NewClient(addr, append(sgrpc.DialOptions(), sgrpc.DialCredentials(nil))...)
func DialOptions() []grpcgo.DialOption {
	return []grpcgo.DialOption{
		grpcgo.WithInitialWindowSize(WindowSize),
		grpcgo.WithInitialConnWindowSize(ConnWindowSize),
	}
}

// Client calls the methods of one gRPC service. [UnaryCall] and [StreamCall] turn its
// methods into endpoints, wrapped with the client's middleware.
type Client struct {
	cc       grpcgo.ClientConnInterface
	service  string
	label    string
	mws      []endpoint.Middleware
	prop     propagation.TextMapPropagator // nil: the default, written by injectW3C
	callOpts []grpcgo.CallOption
	sd       protoreflect.ServiceDescriptor
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClientMiddleware appends middleware that wraps every endpoint the client makes. The
// first is the outermost. The middleware sees endpoint.Info.Client set.
func WithClientMiddleware(mws ...endpoint.Middleware) ClientOption {
	return func(c *Client) { c.mws = append(c.mws, mws...) }
}

// WithClientPropagator sets how trace context is written to request metadata. The default
// writes W3C traceparent, tracestate and baggage.
func WithClientPropagator(p propagation.TextMapPropagator) ClientOption {
	return func(c *Client) {
		if p == nil {
			p = defaultPropagator()
		}
		c.prop = p
	}
}

// WithClientServiceLabel sets the service name that client middleware sees in
// endpoint.Info.Service. The default is the full protobuf service name.
func WithClientServiceLabel(name string) ClientOption { return func(c *Client) { c.label = name } }

// WithCallOptions appends grpc.CallOptions used for every call, such as
// grpc.WaitForReady(true) or grpc.MaxCallRecvMsgSize.
func WithCallOptions(opts ...grpcgo.CallOption) ClientOption {
	return func(c *Client) { c.callOpts = append(c.callOpts, opts...) }
}

// NewClient returns a client for the protobuf service with the given full name, such as
// "addsvc.v1.Add", reached over cc (usually a *grpc.ClientConn shared by the clients of
// one target). As with [NewServer], methods are checked against the service's descriptor
// when the global protobuf registry has it.
func NewClient(cc grpcgo.ClientConnInterface, service string, opts ...ClientOption) *Client {
	c := &Client{cc: cc, service: service, label: service}
	for _, o := range opts {
		o(c)
	}
	c.sd = lookupService(service)
	return c
}

func (c *Client) methodInfo(method string, streaming bool, in, out protoreflect.MessageDescriptor, opts []MethodOption) endpoint.Info {
	idempotent, err := checkMethod(c.sd, method, streaming, in, out)
	if err != nil {
		panic("svckit/transport/grpc: " + err.Error())
	}
	return endpoint.Info{
		Service:    c.label,
		Method:     method,
		Transport:  transportName,
		Client:     true,
		Streaming:  streaming,
		Idempotent: idempotent || applyMethodOptions(opts).idempotent,
	}
}

// UnaryCall returns an endpoint that calls the unary method of the client's service. enc
// turns the endpoint's request into the request message and dec turns the response
// message into the endpoint's response. Every call carries the request id of its context
// (or a new one, so that the server need not make one and send it back) and the context's
// trace context. A failed call returns an *svcerr.Error:
// the server's error, with the same kind, message, fields and metadata, for a svckit
// server (see [FromStatus]). UnaryCall panics if the method does not match the service's
// descriptor.
func UnaryCall[Req, Resp any, WReq, WResp proto.Message](c *Client, method string,
	enc func(Req) (WReq, error), dec func(WResp) (Resp, error), opts ...MethodOption) endpoint.Endpoint[Req, Resp] {
	info := c.methodInfo(method, false, descriptorOf[WReq](), descriptorOf[WResp](), opts)
	newResp := messageFactory[WResp]()
	fullMethod := "/" + c.service + "/" + method
	e := func(ctx context.Context, req Req) (Resp, error) {
		var zero Resp
		in, err := enc(req)
		if err != nil {
			return zero, encodeError(fullMethod, err)
		}
		out := newResp()
		if err := c.cc.Invoke(outgoingMD(ctx, c.prop), fullMethod, in, out, c.callOpts...); err != nil {
			return zero, callError(ctx, c.service, err)
		}
		resp, err := dec(out)
		if err != nil {
			return zero, svcerr.Wrap(svcerr.Internal, "decoding the response failed", fmt.Errorf("%s: %w", fullMethod, err))
		}
		return resp, nil
	}
	return endpoint.Wrap(info, e, c.mws...)
}

// StreamCall returns an endpoint that calls the server-streaming method of the client's
// service. The endpoint returns at once with a lazy sequence; ranging over it runs the
// client middleware around the whole call (endpoint.Info.Streaming is true), yields each
// item as it arrives, decoded by dec, and ends with one (zero, err) pair if the call
// failed. Breaking out of the range cancels the call. The sequence may be ranged over more
// than once; each range is a new call. enc and the errors are as for [UnaryCall].
//
// Middleware sees a nil response and must call next at most once per call: a retry
// middleware would otherwise repeat items already yielded.
func StreamCall[Req, T any, WReq, WItem proto.Message](c *Client, method string,
	enc func(Req) (WReq, error), dec func(WItem) (T, error), opts ...MethodOption) endpoint.Endpoint[Req, iter.Seq2[T, error]] {
	info := c.methodInfo(method, true, descriptorOf[WReq](), descriptorOf[WItem](), opts)
	newItem := messageFactory[WItem]()
	fullMethod := "/" + c.service + "/" + method
	desc := &grpcgo.StreamDesc{StreamName: method, ServerStreams: true}
	inner := func(ctx context.Context, req any) (any, error) {
		y, _ := ctx.Value(yieldKey{}).(*yielder[T])
		if y == nil {
			return nil, contextReplaced(fullMethod)
		}
		r, _ := req.(Req)
		in, err := enc(r)
		if err != nil {
			return nil, encodeError(fullMethod, err)
		}
		callCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		cs, err := c.cc.NewStream(outgoingMD(callCtx, c.prop), desc, fullMethod, c.callOpts...)
		if err != nil {
			return nil, callError(ctx, c.service, err)
		}
		// A failed send reports io.EOF; the call's status then comes from RecvMsg.
		if err := cs.SendMsg(in); err != nil && !errors.Is(err, io.EOF) {
			return nil, callError(ctx, c.service, err)
		}
		if err := cs.CloseSend(); err != nil {
			return nil, callError(ctx, c.service, err)
		}
		for {
			out := newItem()
			if err := cs.RecvMsg(out); err != nil {
				if errors.Is(err, io.EOF) {
					return nil, nil
				}
				return nil, callError(ctx, c.service, err)
			}
			item, err := dec(out)
			if err != nil {
				return nil, svcerr.Wrap(svcerr.Internal, "decoding a streamed item failed", fmt.Errorf("%s: %w", fullMethod, err))
			}
			if !y.yield(item, nil) {
				return nil, nil // the consumer stopped; cancel ends the call
			}
		}
	}
	h := endpoint.Chain(c.mws...)(info, inner)
	return func(ctx context.Context, req Req) (iter.Seq2[T, error], error) {
		return func(yield func(T, error) bool) {
			y := &yielder[T]{f: yield}
			_, err := h(context.WithValue(ctx, yieldKey{}, y), req)
			if err != nil {
				var zero T
				y.yield(zero, err)
			}
			y.end()
		}, nil
	}
}

// yieldKey is the context key of the *yielder of a streaming call.
type yieldKey struct{}

// yielder hands the items of a streaming call to the range loop. It calls the loop body at
// most until the body asks to stop or the range ends, even if middleware left the call
// running in another goroutine.
type yielder[T any] struct {
	mu      sync.Mutex
	f       func(T, error) bool
	stopped bool
}

func (y *yielder[T]) yield(item T, err error) bool {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.stopped {
		return false
	}
	if !y.f(item, err) {
		y.stopped = true
	}
	return !y.stopped
}

func (y *yielder[T]) end() {
	y.mu.Lock()
	y.stopped = true
	y.mu.Unlock()
}

// encodeError classifies an error of a request encoder: an *svcerr.Error keeps its kind,
// anything else is an internal error.
func encodeError(method string, err error) error {
	var e *svcerr.Error
	if errors.As(err, &e) {
		return err
	}
	return svcerr.Wrap(svcerr.Internal, "encoding the request failed", fmt.Errorf("%s: %w", method, err))
}
