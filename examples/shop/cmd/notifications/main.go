// Command notifications runs the shop's notifications service: the orders events
// consumer and the digest that runs on one replica per tick.
package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/shop/notifications"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/schedule"
	_ "github.com/svckit/svckit/store/postgres" // STORE_DSN=postgres://… in production
	_ "github.com/svckit/svckit/store/sqlite"   // STORE_DSN=sqlite:… under svckit dev
)

type config struct {
	svckit.Config
	svckit.StoreConfig
	svckit.NATSConfig
	Digest string `flag:"digest" default:"*/30 * * * * *" help:"cron schedule of the digest (with seconds)"`
}

func main() {
	cfg := &config{}
	svckit.Main("notifications", cfg, func(ctx context.Context, app *svckit.App) error {
		st, err := app.Store(ctx, notifications.Migrations)
		if err != nil {
			return err
		}
		bus, err := app.Bus(ctx, pubsub.Config{Stream: "SHOP", Subjects: []string{"shop.>"}})
		if err != nil {
			return err
		}
		svc := notifications.New(st)
		metrics, err := pubsub.NewMetrics(app.Registry())
		if err != nil {
			return err
		}
		mws := pubsub.Default(app.Logger(), app.TracerProvider(), metrics, 10*time.Second)
		app.Go("orders-events", func(ctx context.Context) error {
			sub, err := bus.Subscribe(ctx, "shop.orders.>", "notifications", svc.Handle,
				// 32 events in flight (8 by default), so that a batch of the recorder
				// (notifications.WithBatch) can hold that many.
				pubsub.WithMiddleware(mws...), pubsub.MaxAttempts(5), pubsub.Concurrency(32))
			if err != nil {
				return err
			}
			<-ctx.Done()
			return sub.Stop(context.WithoutCancel(ctx))
		})
		claims, err := schedule.NewSQL(ctx, st)
		if err != nil {
			return err
		}
		// Every replica runs the scheduler; each tick is claimed in the store by one of them
		// (the holder recorded is the instance), and a failed run is logged.
		sched := schedule.New(claims, schedule.WithHolder(app.Instance()), schedule.WithLogger(app.Logger()))
		if err := sched.Add("digest", cfg.Digest, func(ctx context.Context) error {
			tick, ok := schedule.TickFrom(ctx)
			if !ok {
				tick = time.Now().Truncate(time.Second)
			}
			n, err := svc.Digest(ctx, tick)
			if err == nil {
				app.Logger().InfoContext(ctx, "digest", slog.Int64("tick", tick.Unix()), slog.Int64("notifications", n),
					slog.String("instance", app.Instance()))
			}
			return err
		}); err != nil {
			return err
		}
		app.Go("scheduler", sched.Run)
		return notifications.ServeNotifications(app, svc)
	})
}
