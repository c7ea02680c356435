// Command payments runs the shop's payments service: idempotent charges and refunds.
package main

import (
	"context"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/payments"
	_ "github.com/svckit/svckit/store/postgres" // STORE_DSN=postgres://… in production
	_ "github.com/svckit/svckit/store/sqlite"   // STORE_DSN=sqlite:… under svckit dev
)

type config struct {
	svckit.Config
	svckit.StoreConfig
	svckit.NATSConfig        // for ANNOUNCE=natskv: payments publishes no events
	DeclineAboveCents int64  `flag:"decline-above-cents" default:"100000" help:"decline charges above this amount (0: no limit)"`
	DeclinePrefix     string `flag:"decline-prefix" default:"decline" help:"decline customers whose name starts with this (empty: none)"`
}

func main() {
	cfg := &config{}
	svckit.Main("payments", cfg, func(ctx context.Context, app *svckit.App) error {
		st, err := app.Store(ctx, payments.Migrations)
		if err != nil {
			return err
		}
		rule := payments.DeclineRule{AboveCents: cfg.DeclineAboveCents, CustomerPrefix: cfg.DeclinePrefix}
		return payments.ServePayments(app, payments.New(st, rule))
	})
}
