package svckit_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
	_ "github.com/svckit/svckit/store/sqlite" // the engine for sqlite: DSNs
)

// A service is an App with endpoints registered on its servers. svckit.Main does what
// this example does by hand: load the configuration, run until a signal, shut down.
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	app, err := svckit.New(ctx, "addsvc", &svckit.Config{}, svckit.Options{
		// Main reads these from the command line and the environment.
		Args:   []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"},
		Env:    func(string) (string, bool) { return "", false },
		Stdout: io.Discard,
	})
	if err != nil {
		panic(err)
	}
	e := addsvc.MakeEndpoints(addsvc.New())
	addsvc.RegisterHTTP(app.HTTP(), e)
	addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), e)
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	addr, _ := app.Addr(ctx, "http")
	resp, err := http.Post("http://"+addr.String()+"/sum", "application/json", strings.NewReader(`{"a":2,"b":3}`))
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))

	stop() // as SIGTERM would: drain, close, flush
	fmt.Println("stopped:", <-done)
	// Output:
	// 200 {"v":5}
	// stopped: <nil>
}

// A service with its own store, an event bus and an outbox: the settings come from the
// environment (STORE_DSN, NATS_URL), as `svckit dev` and a Kubernetes Deployment give them.
func ExampleApp_Outbox() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	dir, _ := os.MkdirTemp("", "svckit-example")
	defer os.RemoveAll(dir)
	nats, _ := natsserver.Start(ctx, filepath.Join(dir, "nats")) // what svckit dev starts
	defer nats.Shutdown(context.Background())

	type config struct {
		svckit.Config
		svckit.StoreConfig
		svckit.NATSConfig
	}
	env := map[string]string{
		"STORE_DSN": "sqlite:" + filepath.Join(dir, "orders.db"),
		"NATS_URL":  nats.ClientURL(),
	}
	app, err := svckit.New(ctx, "orders", &config{}, svckit.Options{
		Args:   []string{"-http-addr", "", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"},
		Env:    func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Stdout: io.Discard,
	})
	if err != nil {
		panic(err)
	}
	migrations := fstest.MapFS{"migrations/001_orders.sql": {Data: []byte(
		"CREATE TABLE orders (id TEXT PRIMARY KEY, cents INTEGER NOT NULL);")}}
	st, err := app.Store(ctx, migrations)
	if err != nil {
		panic(err)
	}
	bus, err := app.Bus(ctx, pubsub.Config{Stream: "ORDERS", Subjects: []string{"orders.>"}})
	if err != nil {
		panic(err)
	}
	ob, err := app.Outbox(ctx, st, bus)
	if err != nil {
		panic(err)
	}
	got := make(chan *pubsub.Message, 1)
	sub, _ := bus.Subscribe(ctx, "orders.placed", "billing", func(_ context.Context, m *pubsub.Message) error {
		got <- m
		return nil
	})
	defer sub.Stop(context.Background())
	app.GRPC("example.Orders") // a service serves something; here nothing but health
	go app.Run(ctx)

	// The order and its event commit together; the relay publishes the event after.
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, cents) VALUES ('o-1', 1999)"); err != nil {
			return err
		}
		return ob.Add(ctx, tx, &pubsub.Message{ID: "o-1-placed", Subject: "orders.placed", Data: []byte(`{"id":"o-1"}`)})
	})
	if err != nil {
		panic(err)
	}
	select {
	case m := <-got:
		fmt.Println(m.ID, m.Source, string(m.Data))
	case <-time.After(10 * time.Second):
		fmt.Println("no event")
	}
	// Output: o-1-placed orders {"id":"o-1"}
}
