// Package dashboard is the web dashboard of `svckit dev`: a single-page application and
// its JSON and server-sent-event API over a running [devrun.System].
//
// The pages show the services and their instances (state, health, readiness, restarts,
// uptime, version, addresses) with an architecture view drawn from the traces, live RED
// charts per endpoint from the scraped Prometheus metrics, searchable traces with a span
// waterfall, the services' log lines, an API explorer over each service's OpenAPI
// document, and the JetStream streams, consumers and recent messages.
//
// Everything the page needs is embedded in the binary (hand-written HTML, JavaScript and
// CSS, no framework, no build step); the page loads nothing from outside the dashboard's
// own address. Mount it with devrun's Options.Handler, with a secret for the run:
//
//	secret := dashboard.NewSecret()
//	sys, err := devrun.Start(ctx, devrun.Options{Dir: ".", Handler: func(s *devrun.System) http.Handler {
//		return dashboard.Handler(s, dashboard.WithSecret(secret))
//	}})
//	fmt.Println(dashboard.SecretURL(sys.URL, secret)) // opens the page with the right to change things
//
// It is no back door to the system: it answers only requests addressed to its loopback
// listener (no DNS rebinding), refuses cross-origin browser requests to its API, and
// kills or calls services only for its own page opened with the secret URL, or for a
// request with the secret in the X-Svckit-Secret header. See docs/dashboard.md.
//
// The API, all under /api:
//
//	GET  /api/services                 services, instances, health, readiness, version
//	GET  /api/edges                    who calls whom, who publishes and consumes what
//	GET  /api/metrics?service=         RED series per endpoint
//	GET  /api/traces?service=&name=&error=1&min_ms=&id=&limit=
//	GET  /api/traces/{id}              one trace's spans
//	GET  /api/logs?service=&level=&text=&trace_id=&limit=
//	GET  /api/stream/logs?…            new log lines as server-sent events (same filters)
//	GET  /api/stream/status            services, metrics and store sizes every 2 s (SSE)
//	GET  /api/session                  whether this browser may change things (opened with the secret)
//	POST /api/instances/{id}/kill      SIGKILL an instance (the supervisor restarts it); starts a failed one
//	POST /api/instances/{id}/restart   replace an instance's process without a gap (devrun.Instance.Restart)
//	GET  /api/explorer                 each service's endpoints (OpenAPI, or seen in traces)
//	GET  /api/openapi/{service}        a service's OpenAPI document as given
//	*    /api/call/{service}/{path...} proxied to an instance: the public service as the dev
//	                                   user, internal services read-only (GET, HEAD)
//	GET  /api/events                   streams, subjects, consumers and their lag
//	GET  /api/events/{stream}?n=       a stream's most recent messages
//	GET  /api/faults                   every running instance's fault injection rules
//	POST /api/faults/{service}         add a fault rule on the service's instances
//	DELETE /api/faults/{service}?method=&side=   remove one rule, or all
package dashboard

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/internal/devrun"
)

//go:embed assets
var assetsFS embed.FS

// Assets returns the embedded static files of the page (index.html, app.js, app.css).
func Assets() fs.FS {
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// Option configures the dashboard.
type Option func(*config)

type config struct {
	openapi      func(ctx context.Context, service string) ([]byte, error)
	token        func(ctx context.Context) (string, error)
	events       EventSource
	noEvents     bool
	interval     time.Duration
	probeTimeout time.Duration
	secret       string
}

// WithOpenAPI gives each service's OpenAPI document (the <iface>.openapi.json files the
// generator writes), by service name.
func WithOpenAPI(docs map[string][]byte) Option {
	return WithOpenAPIFunc(func(_ context.Context, service string) ([]byte, error) {
		return docs[service], nil
	})
}

// WithOpenAPIFunc gives each service's OpenAPI document through a function; it returns nil
// bytes for a service without one. Without a document the explorer lists the endpoints
// seen in the traces.
func WithOpenAPIFunc(f func(ctx context.Context, service string) ([]byte, error)) Option {
	return func(c *config) { c.openapi = f }
}

// WithDevToken sets the bearer token that calls from the API explorer carry when the page
// does not send an Authorization header of its own.
func WithDevToken(token string) Option {
	return WithDevTokenFunc(func(context.Context) (string, error) { return token, nil })
}

// WithDevTokenFunc is WithDevToken with a token made per call, such as a short-lived JWT.
func WithDevTokenFunc(f func(ctx context.Context) (string, error)) Option {
	return func(c *config) { c.token = f }
}

// WithEventSource sets where the Events page reads streams and messages from. The
// default is the JetStream of the system's embedded NATS server ([NewJetStreamSource]);
// WithEventSource(nil) turns the Events page off.
func WithEventSource(src EventSource) Option {
	return func(c *config) { c.events, c.noEvents = src, src == nil }
}

// WithInterval sets how often /api/stream/status sends an update (default 2 s, the
// metrics scrape interval).
func WithInterval(d time.Duration) Option {
	return func(c *config) { c.interval = d }
}

// Handler returns the dashboard for sys: the page at / and its API under /api/.
//
// It answers only requests addressed to its own listener (devrun.CheckHost: a loopback
// name or the listener's address, with its port) and refuses cross-origin browser
// requests to the API. What changes something — killing an instance, anything through
// /api/call/, any method but GET and HEAD — also needs the run's secret (WithSecret): the
// session cookie that SecretURL's link sets, with the page's X-Svckit-Dashboard header,
// or the X-Svckit-Secret header.
func Handler(sys *devrun.System, opts ...Option) http.Handler {
	c := config{interval: 2 * time.Second, probeTimeout: 700 * time.Millisecond}
	for _, o := range opts {
		o(&c)
	}
	if c.secret == "" {
		c.secret = NewSecret() // nobody knows it: nothing can be changed
	}
	if c.events == nil && !c.noEvents && sys.NATS != nil {
		c.events = NewJetStreamSource(func() (*nats.Conn, error) { return sys.NATS.Connect(nats.Name("svckit-dashboard")) })
	}
	d := &dash{sys: sys, cfg: c, probes: map[string]probe{}, versions: map[string]string{},
		client: &http.Client{Timeout: c.probeTimeout}}
	mux := http.NewServeMux()
	mux.Handle("/", d.page(staticHandler()))
	mux.HandleFunc("GET /api/session", d.session)
	mux.HandleFunc("GET /api/services", d.services)
	mux.HandleFunc("GET /api/edges", d.edges)
	mux.HandleFunc("GET /api/metrics", d.metrics)
	mux.HandleFunc("GET /api/traces", d.traces)
	mux.HandleFunc("GET /api/traces/{id}", d.trace)
	mux.HandleFunc("GET /api/logs", d.logs)
	mux.HandleFunc("GET /api/stream/logs", d.streamLogs)
	mux.HandleFunc("GET /api/stream/status", d.streamStatus)
	mux.HandleFunc("POST /api/instances/{id}/kill", d.kill)
	mux.HandleFunc("POST /api/instances/{id}/restart", d.restart)
	mux.HandleFunc("GET /api/explorer", d.explorer)
	mux.HandleFunc("GET /api/openapi/{service}", d.openapiDoc)
	mux.HandleFunc("/api/call/{service}/{path...}", d.call)
	mux.HandleFunc("GET /api/events", d.eventStreams)
	mux.HandleFunc("GET /api/events/{stream}", d.eventMessages)
	d.faultRoutes(mux) // faults.go
	return d.guard(mux)
}

// dash serves one system's dashboard.
type dash struct {
	sys    *devrun.System
	cfg    config
	client *http.Client

	mu        sync.Mutex
	probes    map[string]probe  // instance id → last health probe
	versions  map[string]string // binary path → version
	edgesAt   time.Time
	edgesVal  []Edge
	eventsAt  time.Time
	eventsVal []Edge            // consume edges from the event source's consumers
	rr        uint64            // round robin for /api/call
	tlsTr     http.RoundTripper // calls under mTLS, made on first use
}

func staticHandler() http.Handler {
	files := http.FileServerFS(Assets())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		// Nothing from anywhere but this address: the page works offline.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
		files.ServeHTTP(w, r)
	})
}
