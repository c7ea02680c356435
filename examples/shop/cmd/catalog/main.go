// Command catalog runs the shop's catalogue service: products, stock and reservations.
package main

import (
	"context"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/internal/shopkit"
)

type config struct {
	shopkit.Config
	LowStock int64 `flag:"low-stock" default:"5" help:"stock level below which a reservation publishes StockLow"`
}

func main() {
	cfg := &config{}
	svckit.Main("catalog", cfg, func(ctx context.Context, app *svckit.App) error {
		st, err := shopkit.Store(ctx, app, cfg.StoreDSN, catalog.Migrations)
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
		if _, err := shopkit.NewPeers(ctx, app, cfg.Network); err != nil {
			return err
		}
		return catalog.ServeCatalog(app, catalog.New(st, ob, cfg.LowStock))
	})
}
