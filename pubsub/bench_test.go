package pubsub_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/svckit/svckit/pubsub"
)

// BenchmarkPublish publishes batches of 100 messages to the embedded server and waits for
// their acks; ns/op is per message.
func BenchmarkPublish(b *testing.B) {
	bus := newBus(b)
	ctx := context.Background()
	body := make([]byte, 200)
	const size = 100
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		msgs := make([]*pubsub.Message, size)
		for j := range msgs {
			msgs[j] = &pubsub.Message{ID: strconv.Itoa(i*size + j), Subject: "events.bench", Data: body}
		}
		if err := bus.Publish(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/msg")
}
