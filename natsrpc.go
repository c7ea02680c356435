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
// subject) stops the App with the error. A second call with the same service returns the
// same server. Call [App.Use] before NATSRPC, as before App.HTTP and App.GRPC: Run
// refuses to start otherwise.
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
	a.mu.Lock()
	if srv, ok := a.natsRPC[service]; ok {
		a.mu.Unlock()
		return srv, nil
	}
	srv := natsrpc.NewServer(service, append([]natsrpc.ServerOption{
		natsrpc.WithMiddleware(a.mws...),
		natsrpc.WithLogger(a.logger),
	}, opts...)...)
	if a.natsRPC == nil {
		a.natsRPC = make(natsRPCServers)
	}
	a.natsRPC[service] = srv
	a.mu.Unlock()

	var subscribed atomic.Bool
	check := "natsrpc:" + service
	a.health.AddReadiness(check, func(context.Context) error {
		if !subscribed.Load() {
			return errors.New("not subscribed")
		}
		return nil
	})
	a.Go(check, func(ctx context.Context) error {
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

// natsRPCServers holds the App's NATS request/reply servers by service name.
type natsRPCServers map[string]*natsrpc.Server

// NATSRPCClientOptions are the options for NATS request/reply clients (transport/natsrpc):
// [App.ClientMiddleware] around every call.
//
//	nc, err := app.NATS(ctx)
//	cat := catalog.NewCatalogClient(catalog.NewCatalogNATSClient(nc, app.NATSRPCClientOptions()...))
func (a *App) NATSRPCClientOptions() []natsrpc.ClientOption {
	return []natsrpc.ClientOption{natsrpc.WithClientMiddleware(a.ClientMiddleware()...)}
}
