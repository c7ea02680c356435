package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "outbox")
	defer os.RemoveAll(dir)

	st, _ := store.Open(ctx, "sqlite:"+filepath.Join(dir, "orders.db"))
	defer st.Close()
	_, _ = st.DB().ExecContext(ctx, "CREATE TABLE orders (id TEXT PRIMARY KEY, amount INTEGER)")
	srv, _ := natsserver.Start(ctx, filepath.Join(dir, "nats")) // embedded, as in tests
	defer srv.Shutdown(ctx)
	bus, _ := pubsub.Connect(ctx, pubsub.Config{URL: srv.ClientURL(), Source: "orders"})
	defer bus.Close(ctx)

	ob, err := outbox.New(ctx, st) // creates the outbox tables
	if err != nil {
		panic(err)
	}
	relayCtx, stopRelay := context.WithCancel(ctx)
	defer stopRelay()
	go ob.Relay(bus).Run(relayCtx) // one relay per store publishes; others wait

	got := make(chan string, 1)
	sub, _ := bus.Subscribe(ctx, "events.orders.>", "shipping", func(ctx context.Context, m *pubsub.Message) error {
		got <- m.ID + " " + string(m.Data)
		return nil
	})
	defer sub.Stop(ctx)

	// The order and its event commit together, or neither does.
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, amount) VALUES (?, ?)", "o-7", 42); err != nil {
			return err
		}
		return ob.Add(ctx, tx, &pubsub.Message{ID: "o-7-created", Subject: "events.orders.created", Key: "o-7", Data: []byte(`{"id":"o-7"}`)})
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	// Output: o-7-created {"id":"o-7"}
}
