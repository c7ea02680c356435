// Package shopkit is the wiring the shop's services share: their configuration, their
// own store, the event bus, the outbox relay and gRPC connections to each other. It holds
// no business logic.
package shopkit

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// Config is the configuration every shop service with a store has. `svckit dev` sets
// STORE_DSN, NATS_URL and the peers' addresses (ORDERS_GRPC_ADDRS, …) for each process;
// in production the peers are found through a registry instead (see [Peers]).
type Config struct {
	svckit.Config
	Network
	StoreDSN string `flag:"store-dsn" env:"STORE_DSN" default:"sqlite:shop.db" help:"this service's own store: sqlite:PATH or postgres://…"`
	Instance string `flag:"instance-id" env:"INSTANCE_ID" help:"this process's name among the service's replicas"`
}

// Network is where a service finds NATS and how its peers find it. The gateway, which has
// no store, embeds it on its own.
type Network struct {
	NATSURL      string `flag:"nats-url" env:"NATS_URL" help:"NATS server(s), comma-separated: events and the natskv registry; empty starts an embedded server for events"`
	NATSReplicas int    `flag:"nats-replicas" env:"NATS_REPLICAS" default:"1" help:"replicas of the event streams and of the registry bucket when this service creates them (3 on a NATS cluster)"`
	Announce     string `flag:"announce" env:"ANNOUNCE" help:"registry to announce this service's gRPC listener in while it is ready: natskv (NATS KV on NATS_URL), or empty for none"`
}

// Store opens the service's own store, applies its migrations and closes it at shutdown.
func Store(ctx context.Context, app *svckit.App, dsn string, migrations fs.FS) (*store.Store, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx, migrations, store.WithDir("migrations")); err != nil {
		st.Close()
		return nil, err
	}
	app.OnClose("store", func(context.Context) error { return st.Close() })
	app.Health().AddReadiness("store", st.Ping)
	return st, nil
}

// Bus connects to the shop's event stream (SHOP, subjects shop.>) on the NATS servers of
// n, creating it with n.NATSReplicas replicas if it does not exist, and closes it at
// shutdown.
func Bus(ctx context.Context, app *svckit.App, n Network) (*pubsub.Bus, error) {
	b, err := pubsub.Connect(ctx, pubsub.Config{URL: n.NATSURL, Stream: "SHOP", Subjects: []string{"shop.>"}, Source: app.Name(), Replicas: n.NATSReplicas},
		pubsub.WithLogger(app.Logger()), pubsub.WithTracerProvider(app.TracerProvider()))
	if err != nil {
		return nil, fmt.Errorf("event bus: %w", err)
	}
	app.OnClose("bus", b.Close)
	app.Health().AddReadiness("bus", b.Ping)
	return b, nil
}

// Outbox creates the service's outbox and runs its relay to the bus while the app runs.
func Outbox(ctx context.Context, app *svckit.App, st *store.Store, bus *pubsub.Bus, owner string) (*outbox.Outbox, error) {
	ob, err := outbox.New(ctx, st)
	if err != nil {
		return nil, err
	}
	relay := ob.Relay(bus, outbox.Owner(app.Name()+"/"+owner), outbox.RelayLogger(app.Logger()))
	app.Go("outbox-relay", relay.Run)
	return ob, nil
}

// Dial returns a connection to every replica of a peer, given as a comma-separated list
// of host:port, balanced round-robin by gRPC, and closes it at shutdown. [Peers.Dial]
// also finds peers through a registry. Calls through it
// carry the app's client middleware when wrapped by the generated clients.
func Dial(app *svckit.App, peer, addrs string) (*grpc.ClientConn, error) {
	var list []resolver.Address
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, resolver.Address{Addr: a})
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("no address for %s: set %s_GRPC_ADDRS", peer, strings.ToUpper(peer))
	}
	r := manual.NewBuilderWithScheme("shop-" + peer)
	r.InitialState(resolver.State{Addresses: list})
	cc, err := grpc.NewClient(r.Scheme()+":///"+peer,
		grpc.WithResolvers(r),
		app.DialCredentials(peer), // mTLS when -tls-cert/-tls-key/-tls-ca are set
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", peer, err)
	}
	app.OnClose("grpc-"+peer, func(context.Context) error { return cc.Close() })
	return cc, nil
}

// ClientOptions are the options for the generated gRPC clients: the app's middleware
// (tracing, access log, metrics, timeout, recovery) around every call.
func ClientOptions(app *svckit.App) []sgrpc.ClientOption {
	return []sgrpc.ClientOption{sgrpc.WithClientMiddleware(app.Middleware()...)}
}

// Wait bounds how long a service waits for a peer's first answer at start.
const Wait = 10 * time.Second
