package pubsub_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "bus")
	defer os.RemoveAll(dir)

	// An embedded NATS server with JetStream in dir, as tests and `svckit dev` start it.
	// In production URL is the cluster's "nats://…" address; the code is the same.
	srv, err := natsserver.Start(ctx, dir)
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)
	bus, err := pubsub.Connect(ctx, pubsub.Config{URL: srv.ClientURL(), Source: "orders"})
	if err != nil {
		panic(err)
	}
	defer bus.Close(ctx)

	got := make(chan *pubsub.Message, 1)
	logger := slog.New(slog.DiscardHandler)
	sub, err := bus.Subscribe(ctx, "events.orders.>", "billing", func(ctx context.Context, m *pubsub.Message) error {
		got <- m
		return nil // ack; an error means "deliver again later"
	}, pubsub.MaxAttempts(5), pubsub.WithMiddleware(pubsub.Default(logger, nil, nil, 10*time.Second)...))
	if err != nil {
		panic(err)
	}
	defer sub.Stop(ctx)

	err = bus.Publish(ctx, &pubsub.Message{
		ID:      "order-1-created", // the de-duplication id
		Subject: "events.orders.created",
		Key:     "order-1", // events of one key stay in order for Ordered subscriptions
		Type:    "com.example.order.created",
		Data:    []byte(`{"id":"order-1"}`),
	})
	if err != nil {
		panic(err)
	}
	m := <-got
	fmt.Println(m.ID, m.Subject, m.Type, m.Source, m.Attempt, string(m.Data))
	// Output: order-1-created events.orders.created com.example.order.created orders 1 {"id":"order-1"}
}
