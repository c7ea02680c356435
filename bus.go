package svckit

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

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
	NATSURL      string `flag:"nats-url" env:"NATS_URL" required:"true" help:"NATS server(s), comma-separated nats:// URLs: the event bus and the natskv registry"`
	NATSReplicas int    `flag:"nats-replicas" env:"NATS_REPLICAS" default:"1" help:"replicas of the streams and of the registry bucket this service creates (3 on a NATS cluster)"`
	Announce     string `flag:"announce" env:"ANNOUNCE" help:"registry to announce this service's gRPC listener in while it is ready: natskv (NATS KV on NATS_URL), or empty for none"`
}

func (c *NATSConfig) natsConfig() *NATSConfig { return c }

type natsConfig interface{ natsConfig() *NATSConfig }

// Validate checks the settings that the types alone do not.
func (c *NATSConfig) Validate() error {
	if c.NATSReplicas < 1 || c.NATSReplicas > 5 {
		return &config.FieldError{Field: "NATSReplicas", Err: fmt.Errorf("must be 1 to 5, not %d", c.NATSReplicas)}
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
	return nil
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
// use and shared by the bus and the registry. It reconnects forever; it is closed at
// shutdown after everything that uses it.
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
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name(a.name+"/"+a.instance),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true),
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
			logger.Error("nats error", attrs...)
		}))
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
// NATS_URL, creating the stream (with NATS_REPLICAS replicas unless cfg.Replicas says
// otherwise) and its dead-letter stream if they do not exist. Events are published with
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
	relay := ob.Relay(pub, outbox.Owner(a.name+"/"+a.instance), outbox.RelayLogger(a.logger))
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
