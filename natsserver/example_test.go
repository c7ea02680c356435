package natsserver_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/natsserver"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "nats")
	defer os.RemoveAll(dir)

	s, err := natsserver.Start(ctx, dir) // loopback, random port, JetStream in dir
	if err != nil {
		panic(err)
	}
	defer s.Shutdown(ctx)
	nc, _ := s.Connect() // in-process connection
	defer nc.Close()
	js, _ := jetstream.New(nc)
	_, _ = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	ack, err := js.Publish(ctx, "orders.created", []byte(`{"id":1}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(ack.Stream, ack.Sequence)
	// Output: ORDERS 1
}
