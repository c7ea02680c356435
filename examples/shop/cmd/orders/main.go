// Command orders runs the shop's orders service: the order saga and its events.
package main

import (
	"context"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/saga"
	_ "github.com/svckit/svckit/store/postgres" // STORE_DSN=postgres://… in production
	_ "github.com/svckit/svckit/store/sqlite"   // STORE_DSN=sqlite:… under svckit dev
)

type config struct {
	svckit.Config
	svckit.StoreConfig
	svckit.NATSConfig
	CatalogAddrs  string `flag:"catalog-addrs" env:"CATALOG_GRPC_ADDRS" required:"true" help:"catalog gRPC addresses, comma-separated, or natskv: or dns:///… (see svckit App.Dial)"`
	PaymentsAddrs string `flag:"payments-addrs" env:"PAYMENTS_GRPC_ADDRS" required:"true" help:"payments gRPC addresses, comma-separated, or natskv: or dns:///… (see svckit App.Dial)"`
}

func main() {
	cfg := &config{}
	svckit.Main("orders", cfg, func(ctx context.Context, app *svckit.App) error {
		st, err := app.Store(ctx, orders.Migrations)
		if err != nil {
			return err
		}
		bus, err := app.Bus(ctx, pubsub.Config{Stream: "SHOP", Subjects: []string{"shop.>"}})
		if err != nil {
			return err
		}
		ob, err := app.Outbox(ctx, st, bus)
		if err != nil {
			return err
		}
		catCC, err := app.Dial(ctx, "catalog", cfg.CatalogAddrs)
		if err != nil {
			return err
		}
		payCC, err := app.Dial(ctx, "payments", cfg.PaymentsAddrs)
		if err != nil {
			return err
		}
		cat := catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(catCC, app.GRPCClientOptions()...))
		pay := payments.NewPaymentsClient(payments.NewPaymentsGRPCClient(payCC, app.GRPCClientOptions()...))
		sagas, err := saga.New(ctx, st, saga.WithOwner(app.Name()+"/"+app.Instance(), 0), saga.WithLogger(app.Logger()),
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
