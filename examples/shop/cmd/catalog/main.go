// Command catalog runs the shop's catalogue service: products, stock and reservations.
package main

import (
	"context"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/pubsub"
	_ "github.com/svckit/svckit/store/postgres" // STORE_DSN=postgres://… in production
	_ "github.com/svckit/svckit/store/sqlite"   // STORE_DSN=sqlite:… under svckit dev
)

type config struct {
	svckit.Config
	svckit.StoreConfig
	svckit.NATSConfig
	LowStock int64 `flag:"low-stock" default:"5" help:"stock level below which a reservation publishes StockLow"`
}

func main() {
	cfg := &config{}
	svckit.Main("catalog", cfg, func(ctx context.Context, app *svckit.App) error {
		st, err := app.Store(ctx, catalog.Migrations)
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
		return catalog.ServeCatalog(app, catalog.New(st, ob, cfg.LowStock))
	})
}
