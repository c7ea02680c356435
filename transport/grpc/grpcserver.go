package grpc

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// DefaultMaxRecvMsgSize is the largest request message NewGRPCServer accepts: 4 MiB.
const DefaultMaxRecvMsgSize = 4 << 20

// NewGRPCServer returns a grpc.Server with svckit's defaults, followed by opts (later options
// win):
//
//   - keepalive enforcement that lets clients ping every 10s, even between calls, and
//     server pings after 1 minute of silence that drop connections dead for 20s more;
//   - requests of at most [DefaultMaxRecvMsgSize];
//   - fixed flow-control windows, [WindowSize] and [ConnWindowSize], instead of grpc-go's
//     bandwidth-delay estimation and its PING per call;
//   - a pool of goroutines that serve calls, 16 per GOMAXPROCS but at least 32, so that a
//     call does not pay for a new goroutine and the growth of its stack
//     (grpc.NumStreamWorkers);
//   - interceptors that turn a panic in any handler, svckit's or not, into codes.Internal for
//     that call, logged to logger (nil discards) with its stack. Interceptors in opts added
//     with grpc.ChainUnaryInterceptor run inside them.
func NewGRPCServer(logger *slog.Logger, opts ...grpcgo.ServerOption) *grpcgo.Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	defaults := []grpcgo.ServerOption{
		grpcgo.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpcgo.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpcgo.MaxRecvMsgSize(DefaultMaxRecvMsgSize),
		grpcgo.ChainUnaryInterceptor(recoveryUnary(logger)),
		grpcgo.ChainStreamInterceptor(recoveryStream(logger)),
		grpcgo.NumStreamWorkers(streamWorkers(runtime.GOMAXPROCS(0))),
		grpcgo.InitialWindowSize(WindowSize),
		grpcgo.InitialConnWindowSize(ConnWindowSize),
	}
	return grpcgo.NewServer(append(defaults, opts...)...)
}

// streamWorkers is how many goroutines the server keeps to serve calls, given GOMAXPROCS:
// 16 per GOMAXPROCS, at least 32 and at most 1024. grpc-go otherwise starts a goroutine per
// call, whose stack then grows, by copying, to the depth of the middleware chain
// (runtime.copystack: a tenth of a busy server's CPU in svckit's profiles); a worker keeps
// its grown stack for the next call — until a GC cycle finds it idle and halves it (the
// runtime shrinks stacks that use less than a quarter). When every worker is busy, grpc-go
// falls back to a goroutine per call, so a slow handler never holds up others.
//
// Two shapes pull the count in opposite directions. Sequential calls: workers take calls in
// turn (grpc-go hands calls over a channel, whose waiting receivers are served first come,
// first served), so the more workers, the likelier a call lands on one that sat idle
// through a GC cycle and regrows its stack: with 128 workers the copying cost 5.8 µs of
// CPU per call (BenchmarkCatalogCall profile), with 32 2.5, with 8 0.5. Concurrent calls:
// too few workers and most calls fall back to a fresh goroutine. Measured on 2 shared cores
// (load 7–23), medians of alternated rounds, by total workers:
//
//   - 64 concurrent callers, server on one CPU (GOMAXPROCS 1; bench/run.sh's gRPC half),
//     server CPU per call in 5 rounds: none 43.9 µs, 4 44.3, 16 39.7, 32 38.9, 64 37.7
//     (bare grpc-go 28.0), in 4 more 16 35.2, 32 33.2 (bare 25.1), and at load 7–9 in 5
//     more 16 23.7, 32 23.0, 64 22.7 (bare 15.4); 32 beat 16 in 13 of 14 paired rounds,
//     and 64 in 5 of 10;
//   - sequential calls (GOMAXPROCS 2): BenchmarkHop's plaintext overhead 29.5 µs CPU per
//     call with 32 workers against 40.3 with 64 (15 rounds; mTLS 37.9 and 36.1), and
//     balancer BenchmarkClient's seq CPU ratio to bare 0.852/0.886 (sampled/unsampled)
//     against 0.823/0.864 with 64 (15 rounds).
//
// 32 workers is the best measured for sequential calls and within noise of the best for
// concurrent ones, hence the floor, which also serves a
// one-CPU container (Go sets GOMAXPROCS from its CPU limit); above two CPUs the count
// scales at 16 per GOMAXPROCS, as concurrent load does.
func streamWorkers(procs int) uint32 {
	return uint32(min(max(32, 16*procs), 1024))
}

func recoveryUnary(logger *slog.Logger) grpcgo.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpcgo.UnaryServerInfo, handler grpcgo.UnaryHandler) (resp any, err error) {
		defer recoverTo(ctx, logger, info.FullMethod, &err)
		return handler(ctx, req)
	}
}

func recoveryStream(logger *slog.Logger) grpcgo.StreamServerInterceptor {
	return func(srv any, ss grpcgo.ServerStream, info *grpcgo.StreamServerInfo, handler grpcgo.StreamHandler) (err error) {
		defer recoverTo(ss.Context(), logger, info.FullMethod, &err)
		return handler(srv, ss)
	}
}

// recoverTo turns a panic into codes.Internal and logs it with its stack. It must be
// deferred directly.
func recoverTo(ctx context.Context, logger *slog.Logger, method string, err *error) {
	r := recover()
	if r == nil {
		return
	}
	logger.LogAttrs(ctx, slog.LevelError, "panic in a gRPC handler",
		slog.String("method", method), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
	*err = statusError(ErrorDomain, "", svcerr.New(svcerr.Internal, "internal error"))
}

// Standard registers the standard grpc.health.v1 health service and server reflection (v1
// and v1alpha) on g, and returns the health server. Its overall status ("") starts as
// SERVING; set it, and the status of each service, as readiness changes, and call its
// Shutdown when the server begins to stop. Reflection serves the doc comments of the
// files handed to a [Server] with [Server.SetFileDocs], as generated code does, also for
// services registered after Standard; other files come from the global registry.
func Standard(g *grpcgo.Server) *health.Server {
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	registerReflection(g)
	return h
}

// UnaryServerInterceptor returns an interceptor that gives the unary methods of the named
// protobuf service, served by code that protoc-gen-go-grpc generated, what a [Server] gives
// its own: request id and trace context from the metadata, the middleware of opts (wrapped
// once per method, on its first call), svckit's error statuses and panic recovery. Calls to
// other services pass through untouched, so health checks and reflection stay outside the
// middleware; chain one interceptor per service.
//
// Middleware sees the generated request and response messages. A handler may return an
// *svcerr.Error or a gRPC status error; middleware sees both as *svcerr.Error.
func UnaryServerInterceptor(service string, opts ...ServerOption) grpcgo.UnaryServerInterceptor {
	s := newServer(service, opts)
	s.sd = lookupService(service)
	prefix := "/" + service + "/"
	var cache sync.Map // method name -> *interceptedMethod
	inner := func(ctx context.Context, req any) (any, error) {
		handler, _ := ctx.Value(handlerKey{}).(grpcgo.UnaryHandler)
		if handler == nil {
			return nil, contextReplaced(service)
		}
		resp, err := handler(ctx, req)
		return resp, handlerError(err)
	}
	return func(ctx context.Context, req any, info *grpcgo.UnaryServerInfo, handler grpcgo.UnaryHandler) (resp any, err error) {
		method, ok := strings.CutPrefix(info.FullMethod, prefix)
		if !ok {
			return handler(ctx, req)
		}
		m := s.intercepted(&cache, method, false, inner)
		var generatedID string
		defer s.recoverPanic(ctx, info.FullMethod, &generatedID, &err)
		ctx, generatedID = incoming(ctx, s.prop, m.info)
		resp, err = m.h(context.WithValue(ctx, handlerKey{}, handler), req)
		if err != nil {
			return nil, statusError(s.service, generatedID, err)
		}
		return resp, nil
	}
}

// StreamServerInterceptor is [UnaryServerInterceptor] for the streaming methods of the
// named service. Middleware sees the whole call, a nil request and a nil response.
func StreamServerInterceptor(service string, opts ...ServerOption) grpcgo.StreamServerInterceptor {
	s := newServer(service, opts)
	s.sd = lookupService(service)
	prefix := "/" + service + "/"
	var cache sync.Map // method name -> *interceptedMethod
	inner := func(ctx context.Context, _ any) (any, error) {
		c, _ := ctx.Value(handlerKey{}).(*streamCall)
		if c == nil {
			return nil, contextReplaced(service)
		}
		return nil, handlerError(c.handler(c.srv, &contextStream{ServerStream: c.ss, ctx: ctx}))
	}
	return func(srv any, ss grpcgo.ServerStream, info *grpcgo.StreamServerInfo, handler grpcgo.StreamHandler) (err error) {
		method, ok := strings.CutPrefix(info.FullMethod, prefix)
		if !ok {
			return handler(srv, ss)
		}
		m := s.intercepted(&cache, method, true, inner)
		ctx := ss.Context()
		var generatedID string
		defer s.recoverPanic(ctx, info.FullMethod, &generatedID, &err)
		ctx, generatedID = incoming(ctx, s.prop, m.info)
		if _, err := m.h(context.WithValue(ctx, handlerKey{}, &streamCall{srv, ss, handler}), nil); err != nil {
			return statusError(s.service, generatedID, err)
		}
		return nil
	}
}

// contextReplaced is the error of a call whose middleware called next with a context that
// does not derive from the one it was given.
func contextReplaced(method string) error {
	return svcerr.Wrap(svcerr.Internal, "internal error",
		errors.New("svckit/transport/grpc: "+method+": middleware replaced the call's context"))
}

// handlerKey is the context key of the grpc handler of an intercepted call.
type handlerKey struct{}

type streamCall struct {
	srv     any
	ss      grpcgo.ServerStream
	handler grpcgo.StreamHandler
}

// contextStream is a ServerStream with the context that the middleware chain passed on.
type contextStream struct {
	grpcgo.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

type interceptedMethod struct {
	info *endpoint.Info
	h    endpoint.Handler
}

// intercepted returns the middleware-wrapped handler of method, built on its first call.
func (s *Server) intercepted(cache *sync.Map, method string, streaming bool, inner endpoint.Handler) *interceptedMethod {
	if m, ok := cache.Load(method); ok {
		return m.(*interceptedMethod)
	}
	info := &endpoint.Info{Service: s.label, Method: method, Transport: transportName, Streaming: streaming}
	if s.sd != nil {
		if md := s.sd.Methods().ByName(protoreflect.Name(method)); md != nil {
			info.Idempotent = idempotent(md)
		}
	}
	m := &interceptedMethod{info: info, h: endpoint.Chain(s.mws...)(*info, inner)}
	actual, _ := cache.LoadOrStore(method, m)
	return actual.(*interceptedMethod)
}

// handlerError lets middleware see the status error of a generated handler as an
// *svcerr.Error of the status's kind, as [FromStatus] makes it. Other errors are returned
// unchanged.
func handlerError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); !ok {
		return err
	}
	return FromStatus(err)
}
