package natsrpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// DefaultMaxInFlight is how many calls one [Serving] runs at once unless
// [WithMaxInFlight] says otherwise.
const DefaultMaxInFlight = 1024

// maxReplySubject bounds the length of a reply subject the server answers.
const maxReplySubject = 1024

// DefaultDrainTimeout bounds [Server.Serve]'s drain when its context ends.
const DefaultDrainTimeout = 30 * time.Second

// DecodeFunc reads a typed request from a request message.
type DecodeFunc[Req any] func(m *nats.Msg) (Req, error)

// EncodeFunc encodes a typed response as the body of the reply.
type EncodeFunc[Resp any] func(resp Resp) ([]byte, error)

// Server serves the methods of one service on NATS subjects. Register methods with
// [Handle] or [HandleWith], then [Server.Serve] or [Server.Subscribe] on a connection.
type Server struct {
	service      string
	prefix       string
	queue        string
	mws          []endpoint.Middleware
	maxBody      int64
	strict       bool
	prop         propagation.TextMapPropagator
	logger       *slog.Logger
	maxInFlight  int
	drainTimeout time.Duration

	mu      sync.Mutex
	methods []*method
}

// method is one registered method: its subject and the function that answers a request.
type method struct {
	subject string
	name    string
	info    *endpoint.Info
	handle  func(ctx context.Context, m *nats.Msg) *nats.Msg
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithMiddleware appends endpoint middleware that wraps every method of the server. The
// first is the outermost.
func WithMiddleware(mws ...endpoint.Middleware) ServerOption {
	return func(s *Server) { s.mws = append(s.mws, mws...) }
}

// WithPrefix sets the first token(s) of the default subjects, "svc" unless set.
func WithPrefix(prefix string) ServerOption { return func(s *Server) { s.prefix = prefix } }

// WithQueue sets the queue group the subjects are subscribed in; by default the service
// name. Servers in one group share the calls; servers in different groups each get every
// call.
func WithQueue(queue string) ServerOption { return func(s *Server) { s.queue = queue } }

// WithMaxBodyBytes sets the request body limit; larger bodies are answered
// ResourceExhausted. The default is [DefaultMaxBodyBytes].
func WithMaxBodyBytes(n int64) ServerOption { return func(s *Server) { s.maxBody = n } }

// WithStrictFields makes the default JSON decoder reject unknown object members.
func WithStrictFields() ServerOption { return func(s *Server) { s.strict = true } }

// WithPropagator sets how trace context is read from request headers. The default reads
// W3C traceparent, tracestate and baggage.
func WithPropagator(p propagation.TextMapPropagator) ServerOption {
	return func(s *Server) { s.prop = p }
}

// WithLogger sets the logger for transport-level events: rejected and dropped requests
// (debug), panics (error, with stack) and failed replies (warn).
func WithLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.logger = l } }

// WithMaxInFlight sets how many calls run at once per [Serving]; the default is
// [DefaultMaxInFlight].
func WithMaxInFlight(n int) ServerOption { return func(s *Server) { s.maxInFlight = n } }

// WithDrainTimeout sets how long [Server.Serve] waits for calls in flight when its
// context ends; the default is [DefaultDrainTimeout].
func WithDrainTimeout(d time.Duration) ServerOption { return func(s *Server) { s.drainTimeout = d } }

// NewServer returns a server for the named service. It panics if service cannot be part
// of a NATS subject.
func NewServer(service string, opts ...ServerOption) *Server {
	if err := checkSubject(service); err != nil {
		panic("svckit/transport/natsrpc: service name: " + err.Error())
	}
	s := &Server{
		service:      service,
		prefix:       DefaultPrefix,
		queue:        service,
		maxBody:      DefaultMaxBodyBytes,
		prop:         defaultPropagator(),
		logger:       slog.New(slog.DiscardHandler),
		maxInFlight:  DefaultMaxInFlight,
		drainTimeout: DefaultDrainTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	if s.maxInFlight < 1 {
		s.maxInFlight = 1
	}
	return s
}

// MethodOption configures one method, on the server or on the client.
type MethodOption func(*methodConfig)

type methodConfig struct {
	subject    string
	idempotent bool
}

// WithSubject serves or calls the method on subject instead of "<prefix>.<service>.<method>".
func WithSubject(subject string) MethodOption { return func(c *methodConfig) { c.subject = subject } }

// Idempotent marks the method idempotent, which lets retry middleware retry it.
func Idempotent() MethodOption { return func(c *methodConfig) { c.idempotent = true } }

// Subjects returns the subjects of the registered methods, in registration order.
func (s *Server) Subjects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.methods))
	for i, m := range s.methods {
		out[i] = m.subject
	}
	return out
}

// Handle serves e as method name on its subject. Requests are decoded from a JSON body
// (an empty body is the zero request); responses are encoded as JSON. It panics if the
// name or subject is not valid or the subject is taken.
func Handle[Req, Resp any](s *Server, name string, e endpoint.Endpoint[Req, Resp], opts ...MethodOption) {
	HandleWith(s, name, e, decodeJSON[Req](s.maxBody, s.strict), encodeJSON[Resp], opts...)
}

// HandleWith is Handle with a custom decoder and encoder.
func HandleWith[Req, Resp any](s *Server, name string, e endpoint.Endpoint[Req, Resp],
	dec DecodeFunc[Req], enc EncodeFunc[Resp], opts ...MethodOption) {
	var cfg methodConfig
	for _, o := range opts {
		o(&cfg)
	}
	if err := checkName("method name", name); err != nil {
		panic("svckit/transport/natsrpc: " + err.Error())
	}
	subject := cfg.subject
	if subject == "" {
		subject = s.prefix + "." + s.service + "." + name
	}
	if err := checkSubject(subject); err != nil {
		panic("svckit/transport/natsrpc: " + err.Error())
	}
	info := endpoint.Info{Service: s.service, Method: name, Transport: "nats", Idempotent: cfg.idempotent}
	wrapped := endpoint.Wrap(info, e, s.mws...)
	maxBody := s.maxBody
	handle := func(ctx context.Context, m *nats.Msg) *nats.Msg {
		rid := meta.RequestID(ctx)
		if int64(len(m.Data)) > maxBody {
			return errorReply(tooLarge(maxBody), rid)
		}
		req, err := dec(m)
		if err != nil {
			s.logger.LogAttrs(ctx, slog.LevelDebug, "request rejected",
				slog.String("method", name), slog.String("error", err.Error()))
			if svcerr.KindOf(err) == svcerr.Internal {
				err = svcerr.Wrap(svcerr.InvalidArgument, "invalid request", err)
			}
			return errorReply(err, rid)
		}
		resp, err := wrapped(ctx, req)
		if err != nil {
			return errorReply(err, rid)
		}
		body, err := enc(resp)
		if err != nil {
			return errorReply(err, rid)
		}
		return &nats.Msg{Header: nats.Header{meta.RequestIDHeader: {rid}}, Data: body}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.methods {
		if m.subject == subject {
			panic(fmt.Sprintf("svckit/transport/natsrpc: subject %s is taken by method %s", subject, m.name))
		}
	}
	s.methods = append(s.methods, &method{subject: subject, name: name, info: &info, handle: handle})
}

// Serving is a server's set of subscriptions on one connection, made by
// [Server.Subscribe].
type Serving struct {
	s        *Server
	nc       *nats.Conn
	subs     []*nats.Subscription
	sem      chan struct{}
	inflight sync.WaitGroup
	once     sync.Once
	drainErr error
}

// Subscribe subscribes every registered method's subject on nc in the server's queue
// group and serves requests until [Serving.Drain]. It waits until the NATS server has
// the subscriptions, and fails when it refuses one (no permission to subscribe).
func (s *Server) Subscribe(nc *nats.Conn) (*Serving, error) {
	s.mu.Lock()
	methods := append([]*method(nil), s.methods...)
	s.mu.Unlock()
	if len(methods) == 0 {
		return nil, fmt.Errorf("natsrpc: service %s has no methods to serve", s.service)
	}
	sv := &Serving{s: s, nc: nc, sem: make(chan struct{}, s.maxInFlight)}
	for _, m := range methods {
		sub, err := nc.QueueSubscribe(m.subject, s.queue, sv.callback(m))
		if err != nil {
			sv.unsubscribe()
			return nil, fmt.Errorf("natsrpc: subscribe %s: %w", m.subject, err)
		}
		sv.subs = append(sv.subs, sub)
	}
	// The server answers a refused subscription with an error before the flush's PONG.
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		sv.unsubscribe()
		return nil, fmt.Errorf("natsrpc: subscribing the subjects of %s: %w", s.service, err)
	}
	if err := nc.LastError(); err != nil && errors.Is(err, nats.ErrPermissionViolation) {
		for _, m := range methods {
			if strings.Contains(err.Error(), `"`+m.subject+`"`) && strings.Contains(strings.ToLower(err.Error()), "subscription") {
				sv.unsubscribe()
				return nil, fmt.Errorf("natsrpc: no permission to subscribe %s: %w", m.subject, err)
			}
		}
	}
	return sv, nil
}

// Serve subscribes like [Server.Subscribe], serves until ctx ends, then drains: new
// requests go to the other members of the queue group and the calls in flight finish,
// within the drain timeout. It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, nc *nats.Conn) error {
	sv, err := s.Subscribe(nc)
	if err != nil {
		return err
	}
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drainTimeout)
	defer cancel()
	return sv.Drain(dctx)
}

func (sv *Serving) unsubscribe() {
	for _, sub := range sv.subs {
		_ = sub.Unsubscribe()
	}
}

// Drain stops taking requests and waits until the requests already received are
// answered or ctx ends. NATS hands new requests to the other members of the queue group
// from the moment the server processes the unsubscribe. Drain may be called more than
// once; later calls wait for the same drain.
func (sv *Serving) Drain(ctx context.Context) error {
	sv.once.Do(func() {
		closed := make([]<-chan nats.SubStatus, 0, len(sv.subs))
		for _, sub := range sv.subs {
			ch := sub.StatusChanged(nats.SubscriptionClosed)
			if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrBadSubscription) && !errors.Is(err, nats.ErrConnectionClosed) {
				sv.drainErr = errors.Join(sv.drainErr, fmt.Errorf("natsrpc: drain %s: %w", sub.Subject, err))
				_ = sub.Unsubscribe()
			}
			closed = append(closed, ch)
		}
		// Flush so the server has the unsubscribes before we wait for the pending messages.
		if sv.nc.IsConnected() {
			_ = sv.nc.FlushWithContext(ctx)
		}
		for _, ch := range closed {
			if !waitClosed(ctx, ch) {
				sv.drainErr = errors.Join(sv.drainErr, fmt.Errorf("natsrpc: drain: %w", ctx.Err()))
				return
			}
		}
	})
	if sv.drainErr != nil {
		return sv.drainErr
	}
	done := make(chan struct{})
	go func() { sv.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("natsrpc: calls still in flight: %w", ctx.Err())
	}
}

func waitClosed(ctx context.Context, ch <-chan nats.SubStatus) bool {
	for {
		select {
		case st, ok := <-ch:
			if !ok || st == nats.SubscriptionClosed {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// callback returns the subscription callback of m: it takes a slot and answers the
// request in a goroutine of its own, so that calls run concurrently.
func (sv *Serving) callback(m *method) nats.MsgHandler {
	return func(msg *nats.Msg) {
		if msg.Reply == "" {
			sv.s.logger.Debug("request without a reply subject dropped", slog.String("subject", msg.Subject))
			return
		}
		if len(msg.Reply) > maxReplySubject || checkSubject(msg.Reply) != nil {
			// A reply subject with wildcards could never be answered, and publishing to it
			// would only earn the connection an error from the NATS server.
			sv.s.logger.Debug("request with an invalid reply subject dropped", slog.String("subject", msg.Subject))
			return
		}
		sv.inflight.Add(1)
		sv.sem <- struct{}{}
		go func() {
			defer func() { <-sv.sem; sv.inflight.Done() }()
			sv.serve(m, msg)
		}()
	}
}

// serve answers one request.
func (sv *Serving) serve(m *method, msg *nats.Msg) {
	s := sv.s
	ctx := meta.WithSource(context.Background(), msgSource{msg})
	rid := headerGet(msg.Header, meta.RequestIDHeader)
	if !meta.ValidRequestID(rid) {
		rid = meta.NewRequestID()
	}
	ctx = meta.WithRequestID(ctx, rid)
	ctx = endpoint.WithInfo(ctx, m.info)
	if len(msg.Header) > 0 {
		ctx = s.prop.Extract(ctx, carrier(msg.Header))
		if v := headerValues(msg.Header, TimeoutHeader); v != nil {
			if d, ok := parseTimeout(v); ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
		}
	}
	reply := sv.call(ctx, m, msg, rid)
	if err := msg.RespondMsg(reply); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			err = msg.RespondMsg(errorReply(svcerr.Errorf(svcerr.ResourceExhausted,
				"the response is larger than the NATS max payload of %d bytes", sv.nc.MaxPayload()), rid))
		}
		if err != nil {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "sending the reply failed",
				slog.String("method", m.name), slog.String("error", err.Error()))
		}
	}
}

// call runs the method's handler, turning a panic into an Internal error reply.
func (sv *Serving) call(ctx context.Context, m *method, msg *nats.Msg, rid string) (reply *nats.Msg) {
	defer func() {
		if v := recover(); v != nil {
			sv.s.logger.LogAttrs(ctx, slog.LevelError, "panic serving request",
				slog.String("service", sv.s.service), slog.String("method", m.name),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			reply = errorReply(svcerr.New(svcerr.Internal, "internal error"), rid)
		}
	}()
	return m.handle(ctx, msg)
}

// headerValues returns the values of key in h, matched as headerGet does.
func headerValues(h nats.Header, key string) []string {
	if v, ok := h[key]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// msgSource is a request message as a meta.Source.
type msgSource struct{ m *nats.Msg }

// Header returns the first value of the request header key, matched case-insensitively.
func (s msgSource) Header(key string) string { return headerGet(s.m.Header, key) }

// Peer returns "": NATS does not tell a subscriber the address of the publisher.
func (s msgSource) Peer() string { return "" }
