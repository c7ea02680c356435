package svckit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/discovery/natskv"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

// NATSConfig holds where a service finds NATS: the event bus ([App.Bus]), the natskv
// service registry ([App.Dial] with natskv: targets) and whether the service announces
// itself there. Embed it in the service's configuration struct:
//
//	type config struct {
//		svckit.Config
//		svckit.NATSConfig // NATS_URL, NATS_REPLICAS, ANNOUNCE
//	}
//
// NATS_URL is required: a service never starts a NATS server of its own when the setting
// is missing. `svckit dev` and tests start an embedded server (package natsserver) and
// set it.
type NATSConfig struct {
	NATSURL      string `flag:"nats-url" env:"NATS_URL" required:"true" help:"NATS server(s), comma-separated nats:// URLs: the event bus and the natskv registry (credentials go in NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD or NATS_TOKEN, not here)"`
	NATSReplicas int    `flag:"nats-replicas" env:"NATS_REPLICAS" default:"1" help:"replicas of the streams and of the registry bucket this service creates (3 on a NATS cluster)"`
	// NATSDuplicateWindow is how long the streams this service creates remember event ids to
	// drop republished events (JetStream's duplicate window, pubsub.Config.DuplicateWindow
	// where a service leaves it zero). It must outlast the outbox relay's republishes: an
	// unacknowledged publish is repeated after 5 s, and a relay that crashed repeats its
	// last batch when it or another replica takes the lease (10 s). Beyond it, consumers
	// that record message ids (idempotency.Once) still apply an event once. The server
	// keeps about 200 bytes per event published within the window. Zero (a NATSConfig not
	// loaded by package config) leaves pubsub.Config's default.
	NATSDuplicateWindow time.Duration `flag:"nats-duplicate-window" env:"NATS_DUPLICATE_WINDOW" default:"2m" help:"how long the event streams this service creates drop a republished event id (JetStream duplicate window, 30s to 24h)"`
	Announce            string        `flag:"announce" env:"ANNOUNCE" help:"registry to announce this service's gRPC listener in while it is ready: natskv (NATS KV on NATS_URL), or empty for none"`
	// The service's NATS identity: one of a credentials file, an nkey seed file, a user
	// and password, or a token.
	NATSCreds    string        `flag:"nats-creds" env:"NATS_CREDS" help:"NATS credentials file (.creds: user JWT and nkey seed)"`
	NATSNKey     string        `flag:"nats-nkey" env:"NATS_NKEY" help:"file holding the NATS nkey seed (SU…) of this service's user"`
	NATSUser     string        `flag:"nats-user" env:"NATS_USER" help:"NATS user name (with NATS_PASSWORD)"`
	NATSPassword config.Secret `flag:"nats-password" env:"NATS_PASSWORD" help:"NATS password of NATS_USER"`
	NATSToken    config.Secret `flag:"nats-token" env:"NATS_TOKEN" help:"NATS authentication token"`
	// TLS to the NATS servers: the CA that verifies them, and a client certificate when
	// the servers require one.
	NATSTLSCA   string `flag:"nats-tls-ca" env:"NATS_TLS_CA" help:"CA bundle (PEM) that verifies the NATS servers; set to use TLS"`
	NATSTLSCert string `flag:"nats-tls-cert" env:"NATS_TLS_CERT" help:"client certificate (PEM) for NATS servers that verify clients (with NATS_TLS_KEY)"`
	NATSTLSKey  string `flag:"nats-tls-key" env:"NATS_TLS_KEY" help:"private key (PEM) of NATS_TLS_CERT"`
}

// MinDuplicateWindow is the shortest NATS_DUPLICATE_WINDOW a service accepts: three times
// what the outbox relay's republishes take with its defaults (a 5 s ack timeout, a 10 s
// lease).
const MinDuplicateWindow = 30 * time.Second

func (c *NATSConfig) natsConfig() *NATSConfig { return c }

type natsConfig interface{ natsConfig() *NATSConfig }

// Validate checks the settings that the types alone do not.
func (c *NATSConfig) Validate() error {
	if c.NATSReplicas < 1 || c.NATSReplicas > 5 {
		return &config.FieldError{Field: "NATSReplicas", Err: fmt.Errorf("must be 1 to 5, not %d", c.NATSReplicas)}
	}
	if w := c.NATSDuplicateWindow; w != 0 && (w < MinDuplicateWindow || w > 24*time.Hour) { // 0: pubsub's default
		return &config.FieldError{Field: "NATSDuplicateWindow", Err: fmt.Errorf("must be %v to 24h, not %v", MinDuplicateWindow, c.NATSDuplicateWindow)}
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.Host == "" || (pu.Scheme != "nats" && pu.Scheme != "tls" && pu.Scheme != "ws" && pu.Scheme != "wss") {
			return &config.FieldError{Field: "NATSURL", Err: fmt.Errorf("%q is not a nats://host:port URL", redact(u))}
		}
	}
	switch c.Announce {
	case "", "natskv":
	default:
		return &config.FieldError{Field: "Announce", Err: fmt.Errorf("must be natskv or empty, not %q", c.Announce)}
	}
	var ids []string
	for _, id := range []struct{ field, v string }{
		{"NATSCreds", c.NATSCreds}, {"NATSNKey", c.NATSNKey}, {"NATSUser", c.NATSUser}, {"NATSToken", c.NATSToken.Reveal()},
	} {
		if id.v != "" {
			ids = append(ids, id.field)
		}
	}
	if len(ids) > 1 {
		return &config.FieldError{Field: ids[1], Err: fmt.Errorf("only one NATS identity may be set: NATS_CREDS, NATS_NKEY, NATS_USER or NATS_TOKEN")}
	}
	if c.NATSPassword != "" && c.NATSUser == "" {
		return &config.FieldError{Field: "NATSPassword", Err: errors.New("needs NATS_USER")}
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		return &config.FieldError{Field: "NATSTLSCert", Err: errors.New("NATS_TLS_CERT and NATS_TLS_KEY go together")}
	}
	return nil
}

// options returns the NATS connection options of the identity and TLS settings.
func (c *NATSConfig) options() []nats.Option {
	var opts []nats.Option
	switch {
	case c.NATSCreds != "":
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	case c.NATSNKey != "":
		if o, err := nats.NkeyOptionFromSeed(c.NATSNKey); err == nil {
			opts = append(opts, o)
		} else {
			opts = append(opts, func(*nats.Options) error { return fmt.Errorf("NATS_NKEY %s: %w", c.NATSNKey, err) })
		}
	case c.NATSUser != "":
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword.Reveal()))
	case c.NATSToken != "":
		opts = append(opts, nats.Token(c.NATSToken.Reveal()))
	}
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	return opts
}

// redact hides the password in a URL given as text.
func redact(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.User == nil {
		return raw
	}
	u.User = url.User("redacted")
	return u.String()
}

// nats returns the service's NATS settings, or an error saying how to get them.
func (a *App) nats(what string) (*NATSConfig, error) {
	nc, ok := a.userCfg.(natsConfig)
	if !ok {
		return nil, fmt.Errorf("svckit: %s needs NATS_URL: embed svckit.NATSConfig in the configuration struct %T", what, a.userCfg)
	}
	return nc.natsConfig(), nil
}

// NATS returns the service's connection to the NATS servers of NATS_URL, made on first
// use and shared by the bus and the registry, with the identity and TLS of the NATS_*
// settings. It reconnects forever once connected; a first connection that fails (no
// server, or credentials refused) is an error. Publishes or subscriptions the server
// refuses for lack of permission are logged as "nats permission denied" and counted in
// svckit_nats_permission_denied_total. The connection is closed at shutdown after
// everything that uses it.
func (a *App) NATS(ctx context.Context) (*nats.Conn, error) {
	cfg, err := a.nats("App.NATS")
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.natsConn != nil {
		return a.natsConn, nil
	}
	logger := a.logger
	a.natsDenied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "svckit_nats_permission_denied_total",
		Help: "Publishes and subscriptions the NATS server refused for lack of permission.",
	})
	if err := a.preg.Register(a.natsDenied); err != nil {
		return nil, fmt.Errorf("svckit: nats metrics: %w", err)
	}
	nopts := append(cfg.options(),
		nats.Name(a.name+"/"+a.instance),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		// No RetryOnFailedConnect: a service that cannot reach NATS or is refused at
		// start fails its setup with the reason, and its supervisor starts it again.
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", slog.String("error", err.Error()))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", slog.String("server", redact(c.ConnectedUrl())))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{slog.String("error", err.Error())}
			if sub != nil {
				attrs = append(attrs, slog.String("subject", sub.Subject))
			}
			// A permissions violation is a publish or subscribe the server refused: this
			// service tried to publish another's events, or lacks a permission it needs.
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				a.natsDenied.Inc()
				logger.Error("nats permission denied", attrs...)
				return
			}
			logger.Error("nats error", attrs...)
		}))
	nc, err := nats.Connect(cfg.NATSURL, nopts...)
	if err != nil {
		return nil, fmt.Errorf("svckit: connect to NATS_URL %s: %w", redact(cfg.NATSURL), err)
	}
	a.natsConn = nc
	// Registered before anything that uses the connection, so it closes after them.
	a.closers = append(a.closers, func(context.Context) error {
		if err := nc.FlushTimeout(5 * time.Second); err != nil && nc.IsConnected() {
			nc.Close()
			return fmt.Errorf("nats: %w", err)
		}
		nc.Close()
		return nil
	})
	return nc, nil
}

// Bus connects the service to the event stream that cfg describes on the NATS servers of
// NATS_URL, creating the stream (with NATS_REPLICAS replicas and NATS_DUPLICATE_WINDOW as
// its duplicate window unless cfg says otherwise) and its dead-letter stream if they do
// not exist; a stream that exists gets cfg's settings. Events are published with
// the service's name as their CloudEvents source unless cfg.Source is set; cfg.URL is
// ignored. The bus gets the readiness check "bus", the service's logger and tracer, and
// is closed at shutdown.
//
//	bus, err := app.Bus(ctx, pubsub.Config{Stream: "SHOP", Subjects: []string{"shop.>"}})
func (a *App) Bus(ctx context.Context, cfg pubsub.Config) (*pubsub.Bus, error) {
	nc, err := a.NATS(ctx)
	if err != nil {
		return nil, err
	}
	settings, _ := a.nats("App.Bus")
	if cfg.Source == "" {
		cfg.Source = a.name
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = settings.NATSReplicas
	}
	if cfg.DuplicateWindow == 0 {
		cfg.DuplicateWindow = settings.NATSDuplicateWindow
	}
	cfg.URL = ""
	b, err := pubsub.New(ctx, nc, cfg, pubsub.WithLogger(a.logger), pubsub.WithTracerProvider(a.tp))
	if err != nil {
		return nil, fmt.Errorf("svckit: event bus: %w", err)
	}
	a.OnClose("bus", b.Close)
	a.health.AddReadiness("bus", b.Ping)
	return b, nil
}

// Outbox makes the transactional outbox of st (creating its tables) and runs its relay
// to pub while the App runs: events written in a business transaction with
// Outbox.Add are published after the commit, in order, exactly once per message id. With
// several replicas, one relay per store publishes at a time (a lease named for the
// service and its instance id).
func (a *App) Outbox(ctx context.Context, st *store.Store, pub pubsub.Publisher) (*outbox.Outbox, error) {
	ob, err := outbox.New(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("svckit: outbox: %w", err)
	}
	relay := ob.Relay(pub, outbox.Owner(a.name+"/"+a.instance), outbox.RelayLogger(a.logger), outbox.RelayTracerProvider(a.tp))
	a.Go("outbox-relay", relay.Run)
	return ob, nil
}

// registry returns the natskv registry on the service's NATS connection, made on first
// use.
func (a *App) registry(ctx context.Context) (*natskv.Registry, error) {
	cfg, err := a.nats("the natskv registry")
	if err != nil {
		return nil, err
	}
	nc, err := a.NATS(ctx)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.reg != nil {
		return a.reg, nil
	}
	reg, err := natskv.New(ctx, nc, natskv.WithReplicas(cfg.NATSReplicas), natskv.WithLogger(a.logger))
	if err != nil {
		return nil, fmt.Errorf("svckit: natskv registry: %w", err)
	}
	a.reg = reg
	return reg, nil
}
