// Command orders runs the shop's orders service: the order saga and its events.
package main

import (
	"context"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/internal/shopkit"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/saga"
)

type config struct {
	shopkit.Config
	CatalogAddrs  string `flag:"catalog-addrs" env:"CATALOG_GRPC_ADDRS" required:"true" help:"catalog gRPC addresses, comma-separated, or natskv: or dns:///… (see shopkit.Peers)"`
	PaymentsAddrs string `flag:"payments-addrs" env:"PAYMENTS_GRPC_ADDRS" required:"true" help:"payments gRPC addresses, comma-separated, or natskv: or dns:///… (see shopkit.Peers)"`
}

func main() {
	cfg := &config{}
	svckit.Main("orders", cfg, func(ctx context.Context, app *svckit.App) error {
		st, err := shopkit.Store(ctx, app, cfg.StoreDSN, orders.Migrations)
		if err != nil {
			return err
		}
		bus, err := shopkit.Bus(ctx, app, cfg.Network)
		if err != nil {
			return err
		}
		ob, err := shopkit.Outbox(ctx, app, st, bus, cfg.Instance)
		if err != nil {
			return err
		}
		peers, err := shopkit.NewPeers(ctx, app, cfg.Network)
		if err != nil {
			return err
		}
		catCC, err := peers.Dial(ctx, "catalog", cfg.CatalogAddrs)
		if err != nil {
			return err
		}
		payCC, err := peers.Dial(ctx, "payments", cfg.PaymentsAddrs)
		if err != nil {
			return err
		}
		cat := catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(catCC, shopkit.ClientOptions(app)...))
		pay := payments.NewPaymentsClient(payments.NewPaymentsGRPCClient(payCC, shopkit.ClientOptions(app)...))
		sagas, err := saga.New(ctx, st, saga.WithOwner(app.Name()+"/"+cfg.Instance, 0), saga.WithLogger(app.Logger()),
			// A replica that dies for good leaves sagas behind: the others take them over
			// once its 30 s claim lapses.
			saga.WithResumeInterval(10*time.Second))
		if err != nil {
			return err
		}
		app.OnClose("sagas", sagas.Close)
		svc := orders.New(st, ob, sagas, cat, pay)
		if err := sagas.Register(svc.Definition()); err != nil {
			return err
		}
		// Sagas another process left unfinished are picked up once the app runs.
		app.Go("saga-resume", func(ctx context.Context) error {
			if _, err := sagas.Resume(ctx); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		})
		return orders.ServeOrders(app, svc)
	})
}
