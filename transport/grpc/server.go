package grpc

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/propagation"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// transportName is the endpoint.Info.Transport of every endpoint served or called here.
const transportName = "grpc"

// Server serves typed endpoints as the methods of one gRPC service. Methods are added with
// [Unary] and [ServerStream]; [Server.Register] then registers the service on a
// grpc.Server. A Server is not safe for concurrent registration; register every method
// before calling Register.
type Server struct {
	service string // full protobuf service name, "pkg.Service"
	label   string // endpoint.Info.Service
	mws     []endpoint.Middleware
	prop    propagation.TextMapPropagator
	logger  *slog.Logger
	sd      protoreflect.ServiceDescriptor // from the global registry; nil if not found
	desc    grpcgo.ServiceDesc
}

// ServerOption configures a Server (and the interceptors of [UnaryServerInterceptor] and
// [StreamServerInterceptor]).
type ServerOption func(*Server)

// WithMiddleware appends endpoint middleware that wraps every method of the server. The
// first is the outermost.
func WithMiddleware(mws ...endpoint.Middleware) ServerOption {
	return func(s *Server) { s.mws = append(s.mws, mws...) }
}

// WithPropagator sets how trace context is read from request metadata. The default reads
// W3C traceparent, tracestate and baggage.
func WithPropagator(p propagation.TextMapPropagator) ServerOption {
	return func(s *Server) { s.prop = p }
}

// WithServiceLabel sets the service name that middleware sees in endpoint.Info.Service (and
// so metrics and logs), for example "addsvc". The default is the full protobuf service name.
func WithServiceLabel(name string) ServerOption { return func(s *Server) { s.label = name } }

// WithLogger sets the logger for transport-level events: rejected requests (debug), panics
// (error, with stack) and responses that failed to encode (error). The default discards.
func WithLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.logger = l } }

// NewServer returns a server for the protobuf service with the given full name, such as
// "addsvc.v1.Add". When the service's descriptor is in the global protobuf registry (the
// generated .pb.go file of its .proto registers it), every method registered later is
// checked against it, and reflection can describe the service.
func NewServer(service string, opts ...ServerOption) *Server {
	s := newServer(service, opts)
	s.sd = lookupService(service)
	s.desc = grpcgo.ServiceDesc{ServiceName: service, HandlerType: (*any)(nil)}
	if s.sd != nil {
		s.desc.Metadata = s.sd.ParentFile().Path()
	}
	return s
}

func newServer(service string, opts []ServerOption) *Server {
	s := &Server{
		service: service,
		label:   service,
		prop:    defaultPropagator(),
		logger:  slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ServiceDesc returns the grpc.ServiceDesc of the methods registered so far, for
// registration by hand (with a nil service implementation).
func (s *Server) ServiceDesc() *grpcgo.ServiceDesc {
	d := s.desc
	d.Methods = slices.Clone(d.Methods)
	d.Streams = slices.Clone(d.Streams)
	return &d
}

// Register registers the service on g. Register it before g starts serving.
func (s *Server) Register(g grpcgo.ServiceRegistrar) { g.RegisterService(s.ServiceDesc(), nil) }

// MethodOption configures one method of a Server or a Client.
type MethodOption func(*methodConfig)

type methodConfig struct{ idempotent bool }

// Idempotent marks the method as idempotent in endpoint.Info, which lets retry middleware
// retry it. Methods whose .proto declares idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT
// are idempotent without this option.
func Idempotent() MethodOption { return func(c *methodConfig) { c.idempotent = true } }

// Unary registers a unary method of the service served by e. dec turns the request message
// into the endpoint's request; an error from it fails the call with codes.InvalidArgument
// and its text as the message (or with its own kind, if it is an *svcerr.Error). enc turns
// the endpoint's response into the response message. The endpoint is wrapped once, here,
// with the server's middleware. Unary panics if the method is registered already or does
// not match the service's descriptor.
func Unary[Req, Resp any, WReq, WResp proto.Message](s *Server, method string, e endpoint.Endpoint[Req, Resp],
	dec func(WReq) (Req, error), enc func(Resp) (WResp, error), opts ...MethodOption) {
	info := s.methodInfo(method, false, descriptorOf[WReq](), descriptorOf[WResp](), opts)
	wrapped := endpoint.Wrap(*info, e, s.mws...)
	newReq := messageFactory[WReq]()
	fullMethod := "/" + s.service + "/" + method
	handle := func(ctx context.Context, in any) (out any, err error) {
		var generatedID string
		defer s.recoverPanic(ctx, fullMethod, &generatedID, &err)
		ctx, generatedID = incoming(ctx, s.prop, info)
		req, err := dec(in.(WReq))
		if err != nil {
			return nil, s.rejected(ctx, fullMethod, generatedID, decodeError(err))
		}
		resp, err := wrapped(ctx, req)
		if err != nil {
			return nil, statusError(s.service, generatedID, err)
		}
		w, err := enc(resp)
		if err != nil {
			s.logger.LogAttrs(ctx, slog.LevelError, "encoding a gRPC response failed",
				slog.String("method", fullMethod), slog.String("error", err.Error()))
			return nil, statusError(s.service, generatedID, svcerr.Wrap(svcerr.Internal, "internal error", err))
		}
		return w, nil
	}
	uinfo := &grpcgo.UnaryServerInfo{FullMethod: fullMethod}
	s.desc.Methods = append(s.desc.Methods, grpcgo.MethodDesc{
		MethodName: method,
		Handler: func(srv any, ctx context.Context, decode func(any) error, ic grpcgo.UnaryServerInterceptor) (any, error) {
			in := newReq()
			if err := decode(in); err != nil {
				// grpc-go has sent its own status (Internal, or ResourceExhausted for a message
				// over the limit); what is returned here is not sent.
				return nil, err
			}
			if ic == nil {
				return handle(ctx, in)
			}
			return ic(ctx, in, uinfo, handle)
		},
	})
}

// ServerStream registers a server-streaming method of the service served by e, which
// returns the stream as a sequence. The server ranges over the sequence and sends each item
// encoded by enc; the first non-nil error in the sequence ends the call with that error,
// after the items sent before it. The middleware chain wraps the whole call, from the
// endpoint call to the last item (endpoint.Info.Streaming is true), and sees a nil
// response. When the caller cancels, ctx is canceled and the range stops. dec is as for
// [Unary].
func ServerStream[Req, T any, WReq, WItem proto.Message](s *Server, method string, e endpoint.Endpoint[Req, iter.Seq2[T, error]],
	dec func(WReq) (Req, error), enc func(T) (WItem, error), opts ...MethodOption) {
	info := s.methodInfo(method, true, descriptorOf[WReq](), descriptorOf[WItem](), opts)
	newReq := messageFactory[WReq]()
	fullMethod := "/" + s.service + "/" + method
	inner := func(ctx context.Context, req any) (any, error) {
		out, _ := ctx.Value(streamKey{}).(*streamSender)
		if out == nil {
			return nil, contextReplaced(fullMethod)
		}
		r, _ := req.(Req)
		seq, err := e(ctx, r)
		if err != nil || seq == nil {
			return nil, err
		}
		for item, err := range seq {
			if err != nil {
				return nil, err
			}
			w, err := enc(item)
			if err != nil {
				return nil, svcerr.Wrap(svcerr.Internal, "internal error",
					fmt.Errorf("svckit/transport/grpc: %s: encoding a stream item: %w", fullMethod, err))
			}
			if ctx.Err() != nil {
				break
			}
			if err := out.send(w); err != nil {
				return nil, sendError(ctx, err)
			}
		}
		return nil, ctx.Err()
	}
	h := endpoint.Chain(s.mws...)(*info, inner)
	s.desc.Streams = append(s.desc.Streams, grpcgo.StreamDesc{
		StreamName:    method,
		ServerStreams: true,
		Handler: func(srv any, ss grpcgo.ServerStream) (err error) {
			ctx := ss.Context()
			var generatedID string
			defer s.recoverPanic(ctx, fullMethod, &generatedID, &err)
			ctx, generatedID = incoming(ctx, s.prop, info)
			in := newReq()
			if err := ss.RecvMsg(in); err != nil {
				return err // grpc-go has sent its own status, as for unary calls
			}
			req, err := dec(in)
			if err != nil {
				return s.rejected(ctx, fullMethod, generatedID, decodeError(err))
			}
			out := &streamSender{ss: ss}
			defer out.close()
			if _, err := h(context.WithValue(ctx, streamKey{}, out), req); err != nil {
				return statusError(s.service, generatedID, err)
			}
			return nil
		},
	})
}

// streamKey is the context key of the *streamSender of a server-streaming call.
type streamKey struct{}

// streamSender sends the items of one server stream. Once the handler has returned it sends
// nothing more, even if middleware left the endpoint running in another goroutine.
type streamSender struct {
	mu     sync.Mutex
	ss     grpcgo.ServerStream
	closed bool
}

func (s *streamSender) send(m any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return status.Error(codes.Canceled, "the call has ended")
	}
	return s.ss.SendMsg(m)
}

func (s *streamSender) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// sendError classifies a failed send of a stream item.
func sendError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return svcerr.Wrap(svcerr.KindFromGRPC(status.Code(err)), "sending a stream item failed", err)
}

// methodInfo registers method's name, checks it against the service descriptor and returns
// the endpoint.Info of the method, allocated once for all calls.
func (s *Server) methodInfo(method string, streaming bool, in, out protoreflect.MessageDescriptor, opts []MethodOption) *endpoint.Info {
	for _, m := range s.desc.Methods {
		if m.MethodName == method {
			panic(fmt.Sprintf("svckit/transport/grpc: method %s/%s registered twice", s.service, method))
		}
	}
	for _, m := range s.desc.Streams {
		if m.StreamName == method {
			panic(fmt.Sprintf("svckit/transport/grpc: method %s/%s registered twice", s.service, method))
		}
	}
	idempotent, err := checkMethod(s.sd, method, streaming, in, out)
	if err != nil {
		panic("svckit/transport/grpc: " + err.Error())
	}
	return &endpoint.Info{
		Service:    s.label,
		Method:     method,
		Transport:  transportName,
		Streaming:  streaming,
		Idempotent: idempotent || applyMethodOptions(opts).idempotent,
	}
}

func applyMethodOptions(opts []MethodOption) methodConfig {
	var c methodConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// recoverPanic turns a panic of the call into codes.Internal and logs it with its stack.
// *generatedID is the request id the server generated for the call, if it did (see
// [statusError]). It must be deferred directly.
func (s *Server) recoverPanic(ctx context.Context, method string, generatedID *string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	s.logger.LogAttrs(ctx, slog.LevelError, "panic in a gRPC handler",
		slog.String("method", method), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
	*err = statusError(s.service, *generatedID, svcerr.New(svcerr.Internal, "internal error"))
}

// rejected logs a request that failed before reaching the endpoint and returns its status
// (generatedID as for [statusError]).
func (s *Server) rejected(ctx context.Context, method, generatedID string, err error) error {
	s.logger.LogAttrs(ctx, slog.LevelDebug, "gRPC request rejected",
		slog.String("method", method), slog.String("error", err.Error()))
	return statusError(s.service, generatedID, err)
}

// decodeError classifies an error of a request decoder: an *svcerr.Error keeps its kind,
// anything else is an invalid argument described by its text.
func decodeError(err error) error {
	var e *svcerr.Error
	if errors.As(err, &e) {
		return err
	}
	return svcerr.Wrap(svcerr.InvalidArgument, err.Error(), err)
}

// lookupService returns the descriptor of the named service from the global registry, or
// nil.
func lookupService(name string) protoreflect.ServiceDescriptor {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil
	}
	sd, _ := d.(protoreflect.ServiceDescriptor)
	return sd
}

// checkMethod checks that sd, if known, has the method with the given streaming kind and
// message types, and reports whether the .proto declares it idempotent.
func checkMethod(sd protoreflect.ServiceDescriptor, method string, streaming bool, in, out protoreflect.MessageDescriptor) (bool, error) {
	if sd == nil {
		return false, nil
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return false, fmt.Errorf("service %s has no method %s", sd.FullName(), method)
	}
	if md.IsStreamingClient() || md.IsStreamingServer() != streaming {
		kind := "unary"
		if streaming {
			kind = "server-streaming"
		}
		return false, fmt.Errorf("method %s is not %s", md.FullName(), kind)
	}
	if md.Input().FullName() != in.FullName() {
		return false, fmt.Errorf("method %s takes %s, not %s", md.FullName(), md.Input().FullName(), in.FullName())
	}
	if md.Output().FullName() != out.FullName() {
		return false, fmt.Errorf("method %s returns %s, not %s", md.FullName(), md.Output().FullName(), out.FullName())
	}
	return idempotent(md), nil
}

// idempotent reports whether the .proto declares the method idempotent: idempotency_level
// NO_SIDE_EFFECTS or IDEMPOTENT.
func idempotent(md protoreflect.MethodDescriptor) bool {
	opts, _ := md.Options().(*descriptorpb.MethodOptions)
	switch opts.GetIdempotencyLevel() {
	case descriptorpb.MethodOptions_NO_SIDE_EFFECTS, descriptorpb.MethodOptions_IDEMPOTENT:
		return true
	}
	return false
}

// descriptorOf returns the descriptor of the generated message type M.
func descriptorOf[M proto.Message]() protoreflect.MessageDescriptor {
	var zero M
	if any(zero) == nil {
		panic(fmt.Sprintf("svckit/transport/grpc: %T is not a generated message type; use its pointer type, such as *pb.Request", zero))
	}
	return zero.ProtoReflect().Descriptor()
}

// messageFactory returns a function that allocates a new, empty M.
func messageFactory[M proto.Message]() func() M {
	var zero M
	mt := zero.ProtoReflect().Type()
	return func() M { return mt.New().Interface().(M) }
}
