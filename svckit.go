// Package svckit wires svckit's packages into a running service with production defaults,
// so that a service's main function is about ten lines:
//
//	func main() {
//		svckit.Main("addsvc", &svckit.Config{}, func(ctx context.Context, app *svckit.App) error {
//			e := addsvc.MakeEndpoints(addsvc.New())
//			addsvc.RegisterHTTP(app.HTTP(), e)
//			addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), e)
//			return nil
//		})
//	}
//
// [Main] loads the configuration (defaults, file, environment, flags), builds the logger,
// metrics registry, tracer provider and health checks, lets the setup function register
// endpoints, then serves HTTP, gRPC and the admin listener until SIGINT or SIGTERM and shuts
// down gracefully. Every endpoint gets the default middleware chain: tracing, access log,
// RED metrics, timeout and panic recovery.
//
// # Batteries
//
// A service with state and neighbours embeds the settings of what it uses in its
// configuration struct and asks the App for it; everything is then configured by
// conventional settings, with the embedded defaults under `svckit dev`:
//
//	type config struct {
//		svckit.Config
//		svckit.StoreConfig // STORE_DSN: sqlite:PATH (default sqlite:NAME.db) or postgres://…
//		svckit.NATSConfig  // NATS_URL (required), NATS_REPLICAS, NATS_DUPLICATE_WINDOW, ANNOUNCE=natskv
//		CatalogAddrs string `flag:"catalog-addrs" env:"CATALOG_GRPC_ADDRS" required:"true"`
//	}
//
//	st, err := app.Store(ctx, orders.Migrations)            // migrate, readiness, close
//	bus, err := app.Bus(ctx, pubsub.Config{Stream: "SHOP", Subjects: []string{"shop.>"}})
//	ob, err := app.Outbox(ctx, st, bus)                     // the relay runs with the App
//	cc, err := app.Dial(ctx, "catalog", cfg.CatalogAddrs)   // list, natskv: or dns:///…
//	cat := catalog.NewCatalogGRPCClient(cc, app.GRPCClientOptions()...)
//
// [App.Store] opens the service's own store and applies its migrations, [App.Bus]
// connects to NATS and creates the event stream, [App.Outbox] runs the transactional
// outbox relay, [App.Dial] finds a peer's instances (a fixed list, the NATS KV registry or
// DNS) and balances calls over them with mTLS, and ANNOUNCE=natskv registers the service
// while it is ready. Each gets readiness checks and is closed at shutdown in order.
//
// A binary links only the engines it uses: package store links no database driver (the
// main package imports store/sqlite and store/postgres for the engines it wants), and
// nothing here starts a NATS server — NATS_URL is required, and tests and `svckit dev`
// start an embedded one (package natsserver) explicitly.
package svckit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	grpcgo "google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/fault"
	"github.com/svckit/svckit/gctune"
	"github.com/svckit/svckit/health"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/resilience"
	"github.com/svckit/svckit/run"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// Config holds the settings every svckit service has. Embed it in a service's own
// configuration struct; its settings then carry no prefix.
type Config struct {
	HTTPAddr        string        `flag:"http-addr" default:":8080" help:"address of the HTTP listener (empty: no HTTP)"`
	GRPCAddr        string        `flag:"grpc-addr" default:":8081" help:"address of the gRPC listener (empty: no gRPC)"`
	AdminAddr       string        `flag:"admin-addr" default:":9090" help:"address of the admin listener: /healthz, /readyz, /metrics, and /debug/pprof with -pprof"`
	LogLevel        slog.Level    `flag:"log-level" default:"info" help:"lowest level logged: debug, info, warn or error"`
	LogFormat       string        `flag:"log-format" default:"json" help:"log line format: json or text"`
	LogFlush        time.Duration `flag:"log-flush" default:"100ms" help:"longest time a log line waits in the buffer before it is written; errors are written at once (0: write every line at once)"`
	RequestTimeout  time.Duration `flag:"request-timeout" default:"30s" help:"longest a request may run (0: no limit)"`
	MaxBodyBytes    int64         `flag:"max-body-bytes" default:"1048576" help:"largest accepted HTTP request body"`
	ShutdownTimeout time.Duration `flag:"shutdown-timeout" default:"15s" help:"how long in-flight requests may take to finish at shutdown"`
	DrainDelay      time.Duration `flag:"drain-delay" default:"0s" help:"time between reporting not-ready and closing listeners, for load balancers to notice"`
	// Limits of the HTTP listeners: what one client may hold.
	ReadTimeout    time.Duration `flag:"read-timeout" default:"0s" help:"longest time to read an HTTP request, body included; a slower body gets 408 and its connection is closed (0: the request timeout)"`
	IdleTimeout    time.Duration `flag:"idle-timeout" default:"120s" help:"how long an idle keep-alive HTTP connection stays open (0: the read timeout)"`
	MaxHeaderBytes int           `flag:"max-header-bytes" default:"65536" help:"largest HTTP request header section; a larger one gets 431"`
	// CORSOrigins lets browser applications on other origins call the HTTP listener.
	CORSOrigins []string `flag:"cors-origins" help:"origins whose scripts may call the HTTP API, as https://app.example.com or * (empty: no CORS headers)"`
	// TraceBodies records requests and responses on spans (observe.WithBodies), for
	// development: svckit dev -trace-bodies turns it on.
	TraceBodies bool `flag:"trace-bodies" env:"TRACE_BODIES" help:"record each call's request and response (JSON, up to 4 KiB) on its span — for development: bodies hold what callers send"`
	// Pprof serves /debug/pprof on the admin listener; svckit dev turns it on.
	Pprof bool `flag:"pprof" help:"serve /debug/pprof on the admin listener (profiles show memory and stacks: only where operators alone can reach it)"`
	// mTLS between services (tls.go): all three files or none.
	TLSCert  string   `flag:"tls-cert" help:"this service's certificate (PEM) for mTLS; with -tls-key and -tls-ca the HTTP and gRPC listeners require client certificates"`
	TLSKey   string   `flag:"tls-key" help:"the private key of -tls-cert (PEM)"`
	TLSCA    string   `flag:"tls-ca" help:"the CA bundle (PEM) that verifies the certificates of other services"`
	TLSHTTP  string   `flag:"tls-http" default:"mtls" help:"the HTTP listener under mTLS: mtls, or plain for a public edge such as a gateway"`
	TLSAllow []string `flag:"tls-allow" help:"the services whose certificates may connect under mTLS (empty: every service of the trust domain)"`
	// InstanceID names this process among the service's replicas: in logs, NATS
	// connection names, and the leases of the outbox relay.
	InstanceID string `flag:"instance-id" env:"INSTANCE_ID" help:"this process's name among the service's replicas (empty: host name and process id)"`
	// GCHeapFloorMiB keeps the garbage collector from running dozens of times a second
	// while the live heap is small (package gctune).
	GCHeapFloorMiB int `flag:"gc-heap-floor-mib" default:"32" help:"heap size in MiB below which the garbage collector waits for the heap to reach this size rather than twice its live size; trades memory for CPU and is capped by GOMEMLIMIT and the cgroup's memory limit (0: Go's default; ignored when GOGC is set)"`
	// Fault injection (fault.go): FAULT_TOKEN, FAULTS, FAULT_HEADER; off by default.
	FaultConfig
}

// Validate checks the settings that the types alone do not.
func (c *Config) Validate() error {
	switch c.LogFormat {
	case "json", "text":
	default:
		return &config.FieldError{Field: "LogFormat", Err: fmt.Errorf("must be json or text")}
	}
	if c.MaxBodyBytes <= 0 {
		return &config.FieldError{Field: "MaxBodyBytes", Err: fmt.Errorf("must be positive")}
	}
	if c.GCHeapFloorMiB < 0 || c.GCHeapFloorMiB > 1<<20 {
		return &config.FieldError{Field: "GCHeapFloorMiB", Err: fmt.Errorf("must be between 0 and %d, not %d", 1<<20, c.GCHeapFloorMiB)}
	}
	if c.MaxHeaderBytes <= 0 {
		return &config.FieldError{Field: "MaxHeaderBytes", Err: fmt.Errorf("must be positive")}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"LogFlush", c.LogFlush}, {"RequestTimeout", c.RequestTimeout}, {"ShutdownTimeout", c.ShutdownTimeout}, {"DrainDelay", c.DrainDelay},
		{"ReadTimeout", c.ReadTimeout}, {"IdleTimeout", c.IdleTimeout}} {
		if d.v < 0 {
			return &config.FieldError{Field: d.field, Err: fmt.Errorf("must not be negative, not %s", d.v)}
		}
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	if err := (shttp.CORS{AllowedOrigins: c.CORSOrigins}).Validate(); err != nil {
		return &config.FieldError{Field: "CORSOrigins", Err: err}
	}
	for _, a := range []struct{ field, addr string }{{"HTTPAddr", c.HTTPAddr}, {"GRPCAddr", c.GRPCAddr}, {"AdminAddr", c.AdminAddr}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return &config.FieldError{Field: a.field, Err: fmt.Errorf("must be host:port: %w", err)}
		}
	}
	return nil
}

// base returns the Config itself; a service config that embeds Config gets it promoted.
func (c *Config) base() *Config { return c }

type baseConfig interface{ base() *Config }

// Options adjusts an App beyond its configuration, for tests and embedding.
type Options struct {
	// Stdout receives log lines; default os.Stdout.
	Stdout io.Writer
	// Args are the command-line arguments; default os.Args[1:].
	Args []string
	// Env looks up environment variables; default os.LookupEnv.
	Env func(string) (string, bool)
	// SpanExporter, if set, replaces the exporter chosen by the OTEL_* environment.
	SpanExporter sdktrace.SpanExporter
	// Signals overrides the signals that start shutdown; default SIGINT and SIGTERM.
	Signals []os.Signal
}

// App is one running service: its configuration, logger, metrics, tracing, health, and
// the servers its endpoints are registered on.
type App struct {
	name     string
	instance string
	cfg      *Config
	userCfg  any // the struct Config is embedded in, for the batteries' settings
	opts     Options
	logger   *slog.Logger
	preg     *prometheus.Registry
	tp       *observe.TracerProvider
	health   *health.Health
	mws      []endpoint.Middleware // the server chain
	client   []endpoint.Middleware // the client chain, fixed at New
	rejected []endpoint.Middleware // sees HTTP requests refused before an endpoint
	group    *run.Group

	mu       sync.Mutex
	httpSrv  *shttp.Server
	grpcSrv  *grpcgo.Server
	grpcSvcs map[string]*sgrpc.Server
	grpcHlth interface {
		SetServingStatus(string, healthpb.HealthCheckResponse_ServingStatus)
	}
	addrs      map[string]net.Addr
	addrsDone  chan struct{}
	closers    []func(context.Context) error
	logBuf     *observe.BufferedWriter
	announce   []announcement
	workers    []worker
	tls        *mtls.Source    // nil without mTLS (tls.go)
	clientTr   *http.Transport // made by HTTPClient
	natsConn   *nats.Conn      // made by NATS (bus.go)
	natsDenied prometheus.Counter
	reg        *natskv.Registry
	faults     *fault.Injector // nil unless fault injection is on (fault.go)
	useErr     error           // Use after the servers copied the chain
	natsRPC    natsRPCServers  // made by NATSRPC (natsrpc.go)
}

type worker struct {
	name string
	fn   func(context.Context) error
}

// Go runs fn beside the listeners while the App runs — an outbox relay, a subscription,
// a scheduler. Its context is canceled when shutdown begins; an error it returns before
// then stops the App.
func (a *App) Go(name string, fn func(ctx context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.workers = append(a.workers, worker{name: name, fn: fn})
}

type announcement struct {
	reg  discovery.Registry
	meta map[string]string
}

// Announce registers the service's gRPC listener in reg, with metadata such as version,
// zone and weight, once the App is ready, keeps the registration alive, and deregisters
// it first thing at shutdown, before the listeners drain.
func (a *App) Announce(reg discovery.Registry, meta map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.announce = append(a.announce, announcement{reg: reg, meta: meta})
}

// New loads cfg (a pointer to Config or to a struct that embeds Config) and builds an App.
// It returns config.ErrHelp when the arguments ask for -help.
func New(ctx context.Context, name string, cfg any, opts Options) (*App, error) {
	bc, ok := cfg.(baseConfig)
	if !ok {
		return nil, fmt.Errorf("svckit: config %T must be *svckit.Config or embed svckit.Config", cfg)
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	copts := []config.Option{config.WithEnvPrefix(""), config.WithProgramName(name)}
	if opts.Args != nil {
		copts = append(copts, config.WithArgs(opts.Args))
	}
	if opts.Env != nil {
		copts = append(copts, config.WithEnv(opts.Env))
	}
	loader := config.NewLoader(copts...)
	if err := loader.Load(cfg); err != nil {
		return nil, err
	}
	c := bc.base()
	// Load validated these already, unless the service's own Validate method shadows
	// theirs: then they run here.
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if nc, ok := cfg.(natsConfig); ok {
		if err := nc.natsConfig().Validate(); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	instance := c.InstanceID
	if instance == "" {
		host, _ := os.Hostname()
		instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	out := opts.Stdout
	var logBuf *observe.BufferedWriter
	if c.LogFlush > 0 {
		logBuf = observe.NewBufferedWriter(out, 64<<10, c.LogFlush)
		out = logBuf
	}
	lopts := observe.LogOptions{Level: c.LogLevel, Format: c.LogFormat, Service: name}
	if logBuf != nil {
		lopts.Flush, lopts.FlushLevel = logBuf, slog.LevelError
	}
	logger := observe.NewLogger(out, lopts)
	tlsSrc, err := newTLSSource(ctx, name, c, logger)
	if err != nil {
		return nil, err
	}
	tp, err := observe.NewTracerProvider(ctx, observe.TracingOptions{Service: name, Exporter: opts.SpanExporter})
	if err != nil {
		return nil, fmt.Errorf("svckit: tracing: %w", err)
	}
	reg := observe.NewRegistry()
	metrics, err := observe.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("svckit: metrics: %w", err)
	}
	faults, err := newFaults(&c.FaultConfig, reg)
	if err != nil {
		return nil, err
	}
	a := &App{
		name: name, instance: instance, cfg: c, userCfg: cfg, opts: opts, logger: logger, preg: reg, tp: tp, logBuf: logBuf,
		health:    health.New(),
		grpcSvcs:  make(map[string]*sgrpc.Server),
		addrs:     make(map[string]net.Addr),
		addrsDone: make(chan struct{}),
		tls:       tlsSrc,
		faults:    faults,
	}
	if tlsSrc != nil {
		a.Go("mtls-reload", tlsSrc.Run)
	}
	// The default chain, outermost first: the span covers everything and the access log
	// line carries its ids; recovery is innermost so a panic is an error the others see.
	var tracingOpts []observe.TracingOption
	if c.TraceBodies {
		tracingOpts = append(tracingOpts, observe.WithBodies(4<<10))
	}
	a.mws = []endpoint.Middleware{
		observe.Tracing(tp, tracingOpts...),
		observe.AccessLog(logger),
		metrics.Middleware(),
		resilience.Timeout(c.RequestTimeout),
		resilience.Recover(logger),
	}
	// Requests the HTTP server refuses before any endpoint (malformed, too large, unknown
	// route) are logged and counted like the others, under their route or "unmatched".
	a.rejected = []endpoint.Middleware{observe.AccessLog(logger), metrics.Middleware()}
	// Calls to other services: the same span, log line and metrics from the caller's side,
	// bounded by the request timeout, and idempotent calls retried within a budget per
	// called service. No recovery: a client has no handler to panic.
	a.client = []endpoint.Middleware{
		observe.Tracing(tp, tracingOpts...),
		observe.AccessLog(logger),
		metrics.Middleware(),
		resilience.Timeout(c.RequestTimeout),
		retryPerService(),
	}
	a.addFaults()
	settings := loader.Settings()
	attrs := make([]any, 0, len(settings))
	for _, s := range settings {
		attrs = append(attrs, slog.String(s.Name, s.Value))
	}
	logger.LogAttrs(ctx, slog.LevelDebug, "configuration", slog.Group("config", attrs...))
	return a, nil
}

// Name returns the service name.
func (a *App) Name() string { return a.name }

// Logger returns the service's logger. Log with the request's context (InfoContext and
// friends) so lines carry trace_id, span_id and request_id.
func (a *App) Logger() *slog.Logger { return a.logger }

// Registry returns the Prometheus registry served on /metrics.
func (a *App) Registry() *prometheus.Registry { return a.preg }

// TracerProvider returns the service's tracer provider: svckit's lean provider when spans
// go to the default OTLP http/protobuf exporter, an OpenTelemetry SDK provider otherwise
// (its SDK method returns it); see observe.NewTracerProvider.
func (a *App) TracerProvider() *observe.TracerProvider { return a.tp }

// Health returns the service's health checks; add readiness checks for dependencies.
func (a *App) Health() *health.Health { return a.health }

// Instance returns this process's name among the service's replicas: INSTANCE_ID, or the
// host name and process id.
func (a *App) Instance() string { return a.instance }

// Middleware returns a copy of the server middleware chain, outermost first: the
// defaults (tracing, access log, metrics, timeout, recovery) and what [App.Use] added.
func (a *App) Middleware() []endpoint.Middleware {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]endpoint.Middleware(nil), a.mws...)
}

// ClientMiddleware returns a copy of the chain for calls to other services: tracing,
// access log, metrics and the request timeout, seen from the caller, and retries of
// idempotent calls within a budget per called service (at most 10% more load). It does
// not change with [App.Use].
func (a *App) ClientMiddleware() []endpoint.Middleware {
	return append([]endpoint.Middleware(nil), a.client...)
}

// GRPCClientOptions are the options for generated gRPC clients: [App.ClientMiddleware]
// around every call.
//
//	cc, err := app.Dial(ctx, "catalog", cfg.CatalogAddrs)
//	cat := catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(cc, app.GRPCClientOptions()...))
func (a *App) GRPCClientOptions() []sgrpc.ClientOption {
	return []sgrpc.ClientOption{sgrpc.WithClientMiddleware(a.ClientMiddleware()...)}
}

// Use appends middleware to the server chain, inside the defaults, for every endpoint.
// Call it before [App.HTTP] and [App.GRPC]: the servers apply the chain as endpoints are
// registered, so a Use after them would miss endpoints, and Run refuses to start instead.
func (a *App) Use(mws ...endpoint.Middleware) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.httpSrv != nil || len(a.grpcSvcs) > 0 || len(a.natsRPC) > 0 {
		if a.useErr == nil {
			a.useErr = errors.New("svckit: App.Use called after App.HTTP, App.GRPC or App.NATSRPC: call Use first, so that the middleware wraps every endpoint")
		}
		return
	}
	a.mws = append(a.mws, mws...)
}

// OnClose registers fn to run at shutdown after the listeners have drained and before
// traces are flushed: close stores and connections here.
func (a *App) OnClose(name string, fn func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closers = append(a.closers, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// HTTP returns the service's HTTP server; register routes on it with transport/http's
// Handle. It is served on -http-addr.
func (a *App) HTTP() *shttp.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.httpSrv == nil {
		opts := []shttp.ServerOption{
			shttp.WithMiddleware(a.mws...),
			shttp.WithMaxBodyBytes(a.cfg.MaxBodyBytes),
			shttp.WithLogger(a.logger),
			shttp.WithRejectMiddleware(a.rejected...),
		}
		if len(a.cfg.CORSOrigins) > 0 {
			opts = append(opts, shttp.WithCORS(shttp.CORS{AllowedOrigins: a.cfg.CORSOrigins}))
		}
		a.httpSrv = shttp.NewServer(a.name, opts...)
	}
	return a.httpSrv
}

// GRPC returns the server for the gRPC service with the given full name
// ("package.Service"); register methods on it with transport/grpc's Unary and
// ServerStream. It is served on -grpc-addr, beside grpc.health.v1 and reflection.
func (a *App) GRPC(service string) *sgrpc.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.grpcSvcs[service]; ok {
		return s
	}
	s := sgrpc.NewServer(service,
		sgrpc.WithMiddleware(a.mws...),
		sgrpc.WithServiceLabel(a.name),
		sgrpc.WithLogger(a.logger))
	a.grpcSvcs[service] = s
	return s
}

// Addr returns the bound address of a listener ("http", "grpc" or "admin") once the App
// runs, waiting until the listeners are bound or ctx ends.
func (a *App) Addr(ctx context.Context, listener string) (net.Addr, error) {
	select {
	case <-a.addrsDone:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	addr, ok := a.addrs[listener]
	if !ok {
		return nil, fmt.Errorf("svckit: no %s listener", listener)
	}
	return addr, nil
}

// Run serves until ctx is canceled or a signal arrives, then shuts down gracefully.
func (a *App) Run(ctx context.Context) error {
	a.mu.Lock()
	useErr := a.useErr
	a.mu.Unlock()
	if useErr != nil {
		return useErr
	}
	if err := a.announceFromConfig(ctx); err != nil {
		return err
	}
	ropts := []run.Option{
		run.WithLogger(a.logger),
		run.WithShutdownTimeout(a.cfg.ShutdownTimeout),
		run.WithDrainDelay(a.cfg.DrainDelay),
	}
	if a.opts.Signals != nil {
		ropts = append(ropts, run.WithSignals(a.opts.Signals...))
	}
	g := run.NewGroup(ropts...)
	a.group = g
	started := time.Now()
	// An operator's GOGC wins; otherwise a floor under the heap goal spares a small heap
	// dozens of collections a second.
	var gc *gctune.Tuner
	if _, set := os.LookupEnv("GOGC"); !set {
		gc = gctune.Start(int64(a.cfg.GCHeapFloorMiB) << 20)
		defer gc.Stop()
	}

	// Sockets handed down by the parent (svckit dev, systemd) replace the addresses.
	inherited, err := run.InheritedListeners()
	if err != nil {
		return fmt.Errorf("svckit: %w", err)
	}
	// From the shutdown's start, HTTP/1.1 responses close their connection, so that
	// clients move to another instance while this one drains rather than meet a
	// keep-alive connection closed under them.
	var draining atomic.Bool
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
		for _, ln := range inherited {
			_ = ln.Close()
		}
	}
	listen := func(name, addr string) (net.Listener, error) {
		ln, err := inherited[name], error(nil)
		if ln != nil {
			delete(inherited, name)
		} else {
			ln, err = net.Listen("tcp", addr)
		}
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("svckit: %s listener on %s: %w", name, addr, err)
		}
		lns = append(lns, ln)
		a.addrs[name] = ln.Addr()
		return ln, nil
	}

	a.mu.Lock()
	httpSrv, grpcSvcs := a.httpSrv, a.grpcSvcs
	a.mu.Unlock()

	// The admin listener stops after the others have drained, so that probes see /readyz
	// report 503 during the drain rather than a refused connection.
	var serving sync.WaitGroup
	lastToStop := func(stop func(context.Context) error) func(context.Context) error {
		serving.Add(1)
		return func(ctx context.Context) error {
			defer serving.Done()
			return stop(ctx)
		}
	}
	if httpSrv != nil && a.cfg.HTTPAddr != "" {
		ln, err := listen("http", a.cfg.HTTPAddr)
		if err != nil {
			return err
		}
		if tl := a.httpListener(ln); tl != ln {
			ln = tl
		} else {
			ln = shttp.ProblemListener(ln) // net/http's own refusals (431, 400) as problem+json
		}
		// A body slower than the read timeout ends with 408 (transport/http) and its
		// connection is closed; headers get at most 10s of it.
		readTimeout := a.cfg.ReadTimeout
		if readTimeout == 0 {
			readTimeout = a.cfg.RequestTimeout
		}
		headerTimeout := 10 * time.Second
		if readTimeout > 0 && readTimeout < headerTimeout {
			headerTimeout = readTimeout
		}
		srv := &http.Server{
			Handler:           closeWhenDraining(httpSrv, &draining),
			ReadHeaderTimeout: headerTimeout,
			ReadTimeout:       readTimeout,
			IdleTimeout:       a.cfg.IdleTimeout,
			MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
			Protocols:         shttp.Protocols(), // HTTP/1.1, h2c with prior knowledge, HTTP/2 over TLS
			ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
			// For ProblemListener's CloseIdle: at shutdown a keep-alive request sent as
			// it began is answered, not dropped (run.HTTPServer).
			ConnState: shttp.TrackConnState(nil),
		}
		r, s := run.HTTPServer(srv, ln)
		g.Add("http", r, lastToStop(s))
	}
	if len(grpcSvcs) > 0 && a.cfg.GRPCAddr != "" {
		ln, err := listen("grpc", a.cfg.GRPCAddr)
		if err != nil {
			return err
		}
		gs := sgrpc.NewGRPCServer(a.logger, a.grpcServerOptions()...)
		for _, s := range grpcSvcs {
			s.Register(gs)
		}
		hs := sgrpc.Standard(gs)
		a.grpcSrv, a.grpcHlth = gs, hs
		hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		a.health.Watch(func(ready bool) {
			st := healthpb.HealthCheckResponse_NOT_SERVING
			if ready {
				st = healthpb.HealthCheckResponse_SERVING
			}
			hs.SetServingStatus("", st)
			for name := range grpcSvcs {
				hs.SetServingStatus(name, st)
			}
		})
		r, s := run.GRPCServer(gs, ln)
		g.Add("grpc", r, lastToStop(s))
	}
	if a.cfg.AdminAddr != "" {
		ln, err := listen("admin", a.cfg.AdminAddr)
		if err != nil {
			return err
		}
		var adminOpts []health.AdminOption
		if a.cfg.Pprof {
			adminOpts = append(adminOpts, health.WithPprof())
		}
		srv := &http.Server{
			Handler:           a.adminFaults(health.AdminMux(a.health, observe.MetricsHandler(a.preg), adminOpts...)),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       10 * time.Second, // probes and scrapes send no body
			IdleTimeout:       a.cfg.IdleTimeout,
			MaxHeaderBytes:    a.cfg.MaxHeaderBytes,
		}
		r, s := run.HTTPServer(srv, shttp.ProblemListener(ln))
		g.Add("admin", r, func(ctx context.Context) error {
			done := make(chan struct{})
			go func() { serving.Wait(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
			}
			return s(ctx)
		})
	}
	a.mu.Lock()
	workers := a.workers
	a.mu.Unlock()
	for _, w := range workers {
		g.Add(w.name, func(ctx context.Context) error {
			if err := w.fn(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		}, nil)
	}
	for name, ln := range inherited { // handed down but not served here
		a.logger.WarnContext(ctx, "inherited listener not used: this service has no such server", slog.String("listener", name))
		_ = ln.Close()
	}
	close(a.addrsDone)
	if len(lns) == 0 {
		return errors.New("svckit: nothing to serve: no listener configured")
	}

	g.OnReady("health", func(ctx context.Context) error {
		a.health.SetReady(true)
		attrs := []any{slog.Float64("startup_ms", float64(time.Since(started).Microseconds())/1000)}
		for name, addr := range a.addrs {
			attrs = append(attrs, slog.String(name+"_addr", addr.String()))
		}
		if gc != nil {
			attrs = append(attrs, slog.Int64("gc_heap_floor_mib", gc.Floor()>>20))
		}
		a.logger.InfoContext(ctx, "service ready", attrs...)
		return nil
	})
	g.OnShutdown(run.PhaseNotReady, "health", func(ctx context.Context) error {
		draining.Store(true)
		a.health.SetReady(false)
		return nil
	})
	a.mu.Lock()
	anns := a.announce
	a.mu.Unlock()
	if len(anns) > 0 {
		var regMu sync.Mutex
		var regs []discovery.Registration
		g.OnReady("discovery", func(ctx context.Context) error {
			addr, ok := a.addrs["grpc"]
			if !ok {
				return errors.New("svckit: Announce needs a gRPC listener")
			}
			regMu.Lock()
			defer regMu.Unlock()
			for _, an := range anns {
				regs = append(regs, discovery.Announce(context.WithoutCancel(ctx), an.reg,
					discovery.Instance{Service: a.name, Addr: discovery.AdvertiseAddr(addr), Metadata: an.meta},
					discovery.DefaultTTL, discovery.KeepOptions{Logger: a.logger}))
			}
			return nil
		})
		g.OnShutdown(run.PhaseNotReady, "discovery", func(ctx context.Context) error {
			regMu.Lock()
			defer regMu.Unlock()
			var errs []error
			for _, r := range regs {
				errs = append(errs, r.Deregister(ctx))
			}
			return errors.Join(errs...)
		})
	}
	g.OnShutdown(run.PhaseClose, "closers", func(ctx context.Context) error {
		a.mu.Lock()
		closers := a.closers
		a.mu.Unlock()
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i](ctx))
		}
		return errors.Join(errs...)
	})
	g.OnShutdown(run.PhaseFlush, "traces", a.tp.Shutdown)
	if a.logBuf != nil {
		defer a.logBuf.Flush()
	}
	return g.Run(ctx)
}

// announceFromConfig announces the service in the natskv registry when ANNOUNCE says so.
func (a *App) announceFromConfig(ctx context.Context) error {
	nc, ok := a.userCfg.(natsConfig)
	if !ok || nc.natsConfig().Announce != "natskv" {
		return nil
	}
	reg, err := a.registry(ctx)
	if err != nil {
		return err
	}
	a.Announce(reg, nil)
	return nil
}

// flushLogs writes out buffered log lines; later lines are written at once.
func (a *App) flushLogs() {
	if a.logBuf != nil {
		_ = a.logBuf.Close()
	}
}

// Main loads the configuration into cfg, builds the App, calls setup to register the
// service's endpoints and runs the App until SIGINT or SIGTERM. It exits the process: 0
// after a clean shutdown or -help, 2 on a configuration error (one line on stderr naming
// the setting), 1 on any other failure.
func Main(name string, cfg any, setup func(ctx context.Context, app *App) error) {
	os.Exit(main(context.Background(), name, cfg, Options{}, setup))
}

func main(ctx context.Context, name string, cfg any, opts Options, setup func(ctx context.Context, app *App) error) int {
	app, err := New(ctx, name, cfg, opts)
	if errors.Is(err, config.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	defer app.flushLogs()
	if err := setup(ctx, app); err != nil {
		app.logger.ErrorContext(ctx, "setup failed", slog.String("error", err.Error()))
		_ = app.tp.Shutdown(ctx)
		return 1
	}
	if err := app.Run(ctx); err != nil {
		app.logger.ErrorContext(ctx, "service stopped with an error", slog.String("error", err.Error()))
		return 1
	}
	app.logger.InfoContext(ctx, "service stopped")
	return 0
}

// closeWhenDraining answers with "Connection: close" once draining is set: net/http
// then closes each HTTP/1.1 connection after its response, and the client opens its
// next one to a serving instance.
func closeWhenDraining(h http.Handler, draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() && r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// retryPerService retries the idempotent calls of a client chain ([resilience.Retry]'s
// defaults: 3 attempts, backoff from 20 ms with full jitter) within one retry budget per
// called service, so that retries add at most a tenth to the load on any service
// however many of its calls fail.
func retryPerService() endpoint.Middleware {
	var mu sync.Mutex
	budgets := map[string]*resilience.Budget{}
	return func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		mu.Lock()
		b := budgets[info.Service]
		if b == nil {
			b = resilience.NewBudget(resilience.BudgetConfig{})
			budgets[info.Service] = b
		}
		mu.Unlock()
		return resilience.Retry(resilience.RetryConfig{Budget: b})(info, next)
	}
}
