package http

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// TimeoutHeader carries the caller's remaining deadline in whole milliseconds, as in
// "X-Request-Timeout: 1500". A [Client] sends it when the call's context has a deadline
// (rounded up to the next millisecond), and a [Server] gives the request a context with
// that deadline, so a deadline set at the edge bounds the whole chain of calls. The value
// can only shorten a request: the server's own timeout (resilience.Timeout) still applies
// when it is earlier. Values that are not 1 to 10 decimal digits are ignored.
const TimeoutHeader = "X-Request-Timeout"

// Server serves typed endpoints over HTTP. It is an http.Handler: hand it to an
// http.Server (the run package does). Routes are added with [Handle] or [HandleWith].
type Server struct {
	service string
	mux     *http.ServeMux
	mws     []endpoint.Middleware
	maxBody int64
	strict  bool
	prop    propagation.TextMapPropagator
	logger  *slog.Logger
	paths   map[string]*pathMethods // normalized path -> methods registered on it
	pathMux *http.ServeMux          // every route's path without its method, to tell 405 from 404
	rejMws  []endpoint.Middleware   // see WithRejectMiddleware
	unmatch endpoint.Handler        // rejMws around the rejections of requests no route matched
	cors    *corsPolicy             // nil: no CORS headers (WithCORS)
	exact   map[string][]exactRoute // routes without wildcards, by path (see ServeHTTP)
	shared  atomic.Bool             // Mux was handed out or a route has a host: only the mux routes
}

// exactRoute is a route whose path has no wildcards, served without the ServeMux's
// pattern matching when a request's path is exactly its path.
type exactRoute struct {
	method  string
	pattern string // as registered, for Request.Pattern
	h       http.HandlerFunc
}

type pathMethods struct {
	pattern string // the path as first registered in pathMux
	methods []string
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithMiddleware appends endpoint middleware that wraps every route of the server. The
// first is the outermost.
func WithMiddleware(mws ...endpoint.Middleware) ServerOption {
	return func(s *Server) { s.mws = append(s.mws, mws...) }
}

// WithMaxBodyBytes sets the request body limit; larger bodies get 413. The default is
// [DefaultMaxBodyBytes].
func WithMaxBodyBytes(n int64) ServerOption { return func(s *Server) { s.maxBody = n } }

// WithStrictFields makes the default JSON decoder reject unknown object members with 400.
func WithStrictFields() ServerOption { return func(s *Server) { s.strict = true } }

// WithPropagator sets how trace context is read from request headers. The default reads
// W3C traceparent, tracestate and baggage.
func WithPropagator(p propagation.TextMapPropagator) ServerOption {
	return func(s *Server) { s.prop = p }
}

// WithLogger sets the logger for transport-level events: rejected requests (debug), panics
// (error, with stack) and failed response writes.
func WithLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.logger = l } }

// UnmatchedMethod is the method name in the endpoint.Info that [WithRejectMiddleware]
// sees for requests no route matched (404, 405): one bounded label value for every unknown
// path and method.
const UnmatchedMethod = "unmatched"

// WithRejectMiddleware sets middleware that sees each request the server answers with an
// error before any endpoint runs, as a call that failed with that error: a body that is
// malformed (400), too large (413) or of an unsupported media type or encoding (415), with
// the route's endpoint.Info, and a request no route matched (404, 405), with method
// [UnmatchedMethod]. The request the middleware sees is that error, and the handler it
// wraps returns it; svckit's App passes the access log and metrics middleware so
// that rejected requests are logged and counted like the others. By default rejected
// requests are only logged at debug level by the [WithLogger] logger.
func WithRejectMiddleware(mws ...endpoint.Middleware) ServerOption {
	return func(s *Server) { s.rejMws = append(s.rejMws, mws...) }
}

// rejectHandler is the innermost handler of the rejection chain: the request's error.
func rejectHandler(_ context.Context, req any) (any, error) {
	err, _ := req.(error)
	return nil, err
}

// rejectChain returns the handler that passes a rejection of the endpoint described by
// info through the reject middleware, or nil without any.
func (s *Server) rejectChain(info endpoint.Info) endpoint.Handler {
	if len(s.rejMws) == 0 {
		return nil
	}
	return endpoint.Chain(s.rejMws...)(info, rejectHandler)
}

// reject passes err through the rejection handler h (if any) with the request's context,
// then writes it as the response.
func reject(ctx context.Context, h endpoint.Handler, w http.ResponseWriter, r *http.Request, err error) {
	if h != nil {
		_, _ = h(ctx, err)
	}
	WriteProblem(w, r, err)
}

// NewServer returns a server for the named service.
func NewServer(service string, opts ...ServerOption) *Server {
	s := &Server{
		service: service,
		mux:     http.NewServeMux(),
		maxBody: DefaultMaxBodyBytes,
		prop:    defaultPropagator(),
		logger:  slog.New(slog.DiscardHandler),
		paths:   make(map[string]*pathMethods),
		pathMux: http.NewServeMux(),
		exact:   make(map[string][]exactRoute),
	}
	for _, o := range opts {
		o(s)
	}
	s.unmatch = s.rejectChain(endpoint.Info{Service: service, Method: UnmatchedMethod, Transport: "http"})
	s.mux.Handle("/", http.HandlerFunc(s.routeNotFound))
	return s
}

// ServeHTTP routes the request. With [WithCORS] a request from an allowed origin gets the
// CORS response headers, and a preflight request is answered here.
//
// A request whose method and path are exactly those of a route without wildcards goes
// straight to that route, as the ServeMux would send it, without the ServeMux's path
// cleaning and pattern matching; every other request goes through the ServeMux. Once
// [Server.Mux] has been called or a route with a host has been added, every request goes
// through the ServeMux, since a pattern with a host ("POST api.example.com/sum") takes
// precedence for that host.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cors != nil {
		if o, ok := r.Header["Origin"]; ok && len(o) == 1 && s.cors.serve(s, w, r, o[0]) {
			return
		}
	}
	// RawPath is set only when the path's escaping is not the default one ("/a%2Fb"): the
	// ServeMux matches such paths segment by segment on the escaped form, so they take
	// its way.
	if r.URL.RawPath == "" && !s.shared.Load() {
		for _, e := range s.exact[r.URL.Path] {
			if e.method == r.Method {
				r.Pattern = e.pattern
				e.h(w, r)
				return
			}
		}
	}
	s.mux.ServeHTTP(w, r)
}

// Mux returns the underlying ServeMux, for plain http.Handlers that live beside the
// endpoints (webhooks, static files). They get none of the endpoint middleware. From the
// first call on, every request is routed by the ServeMux (see [Server.ServeHTTP]).
func (s *Server) Mux() *http.ServeMux {
	s.shared.Store(true)
	return s.mux
}

// RouteOption configures one route.
type RouteOption func(*routeConfig)

type routeConfig struct {
	status     int
	idempotent bool
}

// WithSuccessStatus sets the status code of successful responses (default 200).
func WithSuccessStatus(code int) RouteOption { return func(c *routeConfig) { c.status = code } }

// Idempotent marks the route's method as idempotent, which lets retry middleware retry it.
// GET, HEAD, PUT and DELETE routes are idempotent without this option.
func Idempotent() RouteOption { return func(c *routeConfig) { c.idempotent = true } }

// Handle serves e at pattern ("POST /sum", "GET /users/{id}") as the service method name.
// Requests are decoded from a JSON body (an empty body is the zero request) and then by
// the request type's BindRequest method if it has one; responses are encoded as JSON.
func Handle[Req, Resp any](s *Server, pattern, name string, e endpoint.Endpoint[Req, Resp], opts ...RouteOption) {
	cfg := routeConfig{status: http.StatusOK}
	for _, o := range opts {
		o(&cfg)
	}
	HandleWith(s, pattern, name, e, decodeJSON[Req](s.maxBody, s.strict), encodeJSON[Resp](cfg.status), opts...)
}

// HandleWith is Handle with a custom decoder and encoder.
func HandleWith[Req, Resp any](s *Server, pattern, name string, e endpoint.Endpoint[Req, Resp],
	dec DecodeFunc[Req], enc EncodeFunc[Resp], opts ...RouteOption) {
	var cfg routeConfig
	for _, o := range opts {
		o(&cfg)
	}
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		panic(fmt.Sprintf("svckit/transport/http: pattern %q needs a method, as in \"POST /sum\"", pattern))
	}
	method = strings.ToUpper(method)
	info := endpoint.Info{
		Service:    s.service,
		Method:     name,
		Transport:  "http",
		Idempotent: cfg.idempotent || method == http.MethodGet || method == http.MethodHead || method == http.MethodPut || method == http.MethodDelete,
	}
	wrapped := endpoint.Wrap(info, e, s.mws...)
	rejected := s.rejectChain(info)
	h := func(w http.ResponseWriter, r *http.Request) {
		ctx := s.requestContext(w, r)
		if v, ok := r.Header[TimeoutHeader]; ok {
			if d, ok := parseTimeout(v); ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
			}
		}
		defer s.recoverPanic(w, r, &info)
		req, err := dec(r)
		if err != nil {
			s.logger.LogAttrs(ctx, slog.LevelDebug, "request rejected",
				slog.String("method", info.Method), slog.String("error", err.Error()))
			reject(ctx, rejected, w, r, err)
			return
		}
		resp, err := wrapped(ctx, req)
		if err != nil {
			WriteProblem(w, r, err)
			return
		}
		if err := enc(w, r, resp); err != nil {
			s.logger.LogAttrs(ctx, slog.LevelWarn, "writing response failed",
				slog.String("method", info.Method), slog.String("error", err.Error()))
		}
	}
	s.mux.HandleFunc(method+" "+path, h)
	s.addMethod(method, path)
	switch {
	case !strings.HasPrefix(path, "/"):
		// A route with a host ("POST api.example.com/sum") takes precedence over one
		// without for that host: only the ServeMux routes from now on.
		s.shared.Store(true)
	case isExactPath(path):
		s.exact[path] = append(s.exact[path], exactRoute{method: method, pattern: method + " " + path, h: h})
	}
}

// isExactPath reports whether a route's path matches only itself: it starts with "/" (no
// host), has no wildcards and no escapes, does not end in "/" (which would match a
// subtree) and is clean, so that the ServeMux would neither redirect a request for it nor
// match it against another pattern first.
func isExactPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasSuffix(p, "/") &&
		!strings.ContainsAny(p, "{}%") && path.Clean(p) == p
}

// requestContext returns the request's context with its request id, the caller's trace
// context and the request as a meta.Source, and echoes the request id in the response.
func (s *Server) requestContext(w http.ResponseWriter, r *http.Request) context.Context {
	c := &requestContext{Context: r.Context(), src: requestSource{r}}
	// The caller's id is echoed with the request's own header slice (one value, valid),
	// which saves an allocation; a new id gets the slice in c.
	v := r.Header[meta.RequestIDHeader]
	if len(v) > 0 && meta.ValidRequestID(v[0]) {
		c.id = v[0]
		v = v[:1:1]
	} else {
		c.id = meta.NewRequestID()
		c.header[0] = c.id
		v = c.header[:]
	}
	w.Header()[meta.RequestIDHeader] = v
	var ctx context.Context = c
	if _, ok := r.Header["Traceparent"]; ok {
		ctx = s.prop.Extract(ctx, headerCarrier(r.Header))
	} else if _, ok := r.Header["Baggage"]; ok {
		ctx = s.prop.Extract(ctx, headerCarrier(r.Header))
	}
	return ctx
}

// requestContext is the context of a served request as Server.requestContext prepares
// it: the request as a meta.Source, its request id and the response header's value slice
// for a new id, in one allocation where meta.WithSource, meta.WithRequestID and the slice
// would make three (it answers their keys).
type requestContext struct {
	context.Context
	src    requestSource
	id     string
	header [1]string
}

// Value answers meta.SourceKey and meta.RequestIDKey; other keys are the parent's.
func (c *requestContext) Value(key any) any {
	switch key.(type) {
	case meta.SourceKey:
		return c.src
	case meta.RequestIDKey:
		return &c.id // pointer-shaped: no allocation per lookup
	}
	return c.Context.Value(key)
}

// defaultPropagator returns the propagator servers and clients use unless told otherwise:
// W3C trace context (traceparent, tracestate) and W3C baggage, the same as
// observe.Propagator, built here so that this package does not depend on observe.
func defaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// parseTimeout parses the values of a TimeoutHeader: one value of 1 to 10 decimal digits,
// in milliseconds.
func parseTimeout(v []string) (time.Duration, bool) {
	if len(v) != 1 || len(v[0]) == 0 || len(v[0]) > 10 {
		return 0, false
	}
	ms, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil || ms == 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// requestSource is an incoming request as a meta.Source. It is pointer-shaped, so
// converting it to the interface does not allocate.
type requestSource struct{ r *http.Request }

func (s requestSource) Header(key string) string { return s.r.Header.Get(key) }
func (s requestSource) Peer() string             { return meta.HostOf(s.r.RemoteAddr) }

// PeerCertificate returns the leaf of the first verified chain of the request's TLS
// connection: the caller's client certificate, when the server verified one.
func (s requestSource) PeerCertificate() *x509.Certificate {
	if s.r.TLS == nil || len(s.r.TLS.VerifiedChains) == 0 || len(s.r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return s.r.TLS.VerifiedChains[0][0]
}

var _ meta.CertSource = requestSource{}

// recoverPanic turns a panic in decoding, middleware, the endpoint or encoding into a 500
// for this request only. http.ErrAbortHandler is re-panicked, as net/http expects.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request, info *endpoint.Info) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
		slog.String("service", info.Service), slog.String("method", info.Method),
		slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
	WriteProblem(w, r, svcerr.New(svcerr.Internal, "internal error"))
}

// addMethod records that path serves method, so that other methods on the same path get
// 405 with an Allow header rather than 404. The paths live in a second mux without
// methods: registering method-less catch-alls in the main mux would conflict with routes
// such as "GET /items/{id}" beside "POST /items/search".
func (s *Server) addMethod(method, path string) {
	key := normalizePath(path)
	pm, ok := s.paths[key]
	if !ok {
		pm = &pathMethods{pattern: path}
		s.paths[key] = pm
		func() {
			// Two method-less paths can conflict where the routes did not ("GET /a/{x}/b"
			// and "POST /a/c/{y}"); such a path then answers 404 instead of 405.
			defer func() { _ = recover() }()
			s.pathMux.Handle(path, http.NotFoundHandler())
		}()
	}
	if !slices.Contains(pm.methods, method) {
		pm.methods = append(pm.methods, method)
		if method == http.MethodGet && !slices.Contains(pm.methods, http.MethodHead) {
			pm.methods = append(pm.methods, http.MethodHead)
		}
		slices.Sort(pm.methods)
	}
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, pm *pathMethods) {
	ctx := s.requestContext(w, r)
	allow := strings.Join(pm.methods, ", ")
	w.Header().Set("Allow", allow)
	reject(ctx, s.unmatch, w, r, WithStatus(http.StatusMethodNotAllowed, svcerr.Errorf(svcerr.InvalidArgument,
		"method %s is not allowed on %s; allowed: %s", truncate(r.Method, 32), truncate(r.URL.Path, 256), allow)))
}

// methodsFor returns the methods routed on the request's path, or nil.
func (s *Server) methodsFor(r *http.Request) *pathMethods {
	if _, pattern := s.pathMux.Handler(r); pattern != "" {
		return s.paths[normalizePath(pattern)]
	}
	return nil
}

// routeNotFound answers requests no route matched: 405 when a route has the path with
// another method, 404 otherwise.
func (s *Server) routeNotFound(w http.ResponseWriter, r *http.Request) {
	if pm := s.methodsFor(r); pm != nil {
		s.methodNotAllowed(w, r, pm)
		return
	}
	ctx := s.requestContext(w, r)
	reject(ctx, s.unmatch, w, r, svcerr.Errorf(svcerr.NotFound, "no route for %s %s", truncate(r.Method, 32), truncate(r.URL.Path, 256)))
}

// normalizePath replaces wildcard names so that /users/{id} and /users/{name} are one path.
func normalizePath(p string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		w := p[i+1 : i+j]
		if strings.HasSuffix(w, "...") {
			b.WriteString("{...}")
		} else {
			b.WriteString("{}")
		}
		p = p[i+j+1:]
	}
}
