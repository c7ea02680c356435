// Command payments runs the shop's payments service: idempotent charges and refunds.
package main

import (
	"context"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/internal/shopkit"
	"github.com/svckit/svckit/examples/shop/payments"
)

type config struct {
	shopkit.Config
	DeclineAboveCents int64  `flag:"decline-above-cents" default:"100000" help:"decline charges above this amount (0: no limit)"`
	DeclinePrefix     string `flag:"decline-prefix" default:"decline" help:"decline customers whose name starts with this (empty: none)"`
}

func main() {
	cfg := &config{}
	svckit.Main("payments", cfg, func(ctx context.Context, app *svckit.App) error {
		st, err := shopkit.Store(ctx, app, cfg.StoreDSN, payments.Migrations)
		if err != nil {
			return err
		}
		if _, err := shopkit.NewPeers(ctx, app, cfg.Network); err != nil {
			return err
		}
		rule := payments.DeclineRule{AboveCents: cfg.DeclineAboveCents, CustomerPrefix: cfg.DeclinePrefix}
		return payments.ServePayments(app, payments.New(st, rule))
	})
}
