package svckit

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/svckit/svckit/transport/natsrpc"
)

// NATSRPC returns a server for the named service on NATS request/reply (package
// transport/natsrpc); register methods on it with natsrpc.Handle, or with a generated
// Register…NATS function. While the App runs, its methods are served on the connection
// of [App.NATS] — subjects "svc.<service>.<Method>", in the queue group <service>, so
// that the replicas of the service share the calls — with the App's middleware chain
// (tracing, access log, metrics, timeout, recovery and what [App.Use] added), its logger,
// and a drain bounded by SHUTDOWN_TIMEOUT. The readiness check "natsrpc:<service>"
// passes once the subjects are subscribed. At shutdown the subscriptions are drained
// with the other listeners: new calls go to the other replicas and the calls in flight
// finish before the NATS connection closes.
//
// It needs svckit.NATSConfig in the configuration (NATS_URL and the NATS identity). A
// NATS server that refuses a subscription (the service's user may not subscribe the
// subject) stops the App with the error. Call [App.Use] before NATSRPC: an App whose
// chain grew after NATSRPC stops with an error instead of serving without it.
//
//	srv, err := app.NATSRPC("catalog.Catalog")
//	if err != nil {
//		return err
//	}
//	natsrpc.Handle(srv, "GetProduct", e.GetProduct)
func (a *App) NATSRPC(service string, opts ...natsrpc.ServerOption) (*natsrpc.Server, error) {
	if _, err := a.nats("App.NATSRPC"); err != nil {
		return nil, err
	}
	mws := a.Middleware()
	srv := natsrpc.NewServer(service, append([]natsrpc.ServerOption{
		natsrpc.WithMiddleware(mws...),
		natsrpc.WithLogger(a.logger),
	}, opts...)...)
	var subscribed atomic.Bool
	check := "natsrpc:" + service
	a.health.AddReadiness(check, func(context.Context) error {
		if !subscribed.Load() {
			return errors.New("not subscribed")
		}
		return nil
	})
	a.Go(check, func(ctx context.Context) error {
		if n := len(a.Middleware()); n != len(mws) {
			return fmt.Errorf("svckit: App.Use called after App.NATSRPC(%q): call Use first, so that the middleware wraps every endpoint", service)
		}
		nc, err := a.NATS(ctx)
		if err != nil {
			return err
		}
		sv, err := srv.Subscribe(nc)
		if err != nil {
			return fmt.Errorf("svckit: serving %s on NATS: %w", service, err)
		}
		subscribed.Store(true)
		<-ctx.Done()
		subscribed.Store(false)
		timeout := a.cfg.ShutdownTimeout
		if timeout <= 0 {
			timeout = natsrpc.DefaultDrainTimeout
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		return sv.Drain(dctx)
	})
	return srv, nil
}

// NATSRPCClientOptions are the options for NATS request/reply clients (transport/natsrpc):
// [App.ClientMiddleware] around every call.
//
//	nc, err := app.NATS(ctx)
//	cat := catalog.NewCatalogClient(catalog.NewCatalogNATSClient(nc, app.NATSRPCClientOptions()...))
func (a *App) NATSRPCClientOptions() []natsrpc.ClientOption {
	return []natsrpc.ClientOption{natsrpc.WithClientMiddleware(a.ClientMiddleware()...)}
}
