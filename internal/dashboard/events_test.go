package dashboard_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/natsserver"
)

func TestJetStreamSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx, t.TempDir(), natsserver.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "ORDERS", Subjects: []string{"order.>"}},
		{Name: "DLQ", Subjects: []string{"dlq.>"}, AllowDirect: true},
	} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "notifications",
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "order.placed"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "orders-audit",
		AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "order.paid"}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		subject := "order.placed"
		if i == 5 {
			subject = "order.paid"
		}
		msg := &nats.Msg{Subject: subject, Data: []byte(fmt.Sprintf(`{"order":%d}`, i)), Header: nats.Header{"Traceparent": {"00-0123-01"}}}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "dlq.order.placed._k.3", []byte{0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	// One message delivered and left unacknowledged; three still pending.
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	orders, err := js.Stream(ctx, "ORDERS")
	if err != nil {
		t.Fatal(err)
	}
	if err := orders.DeleteMsg(ctx, 4); err != nil {
		t.Fatal(err)
	}

	src := dashboard.NewJetStreamSource(func() (*nats.Conn, error) { return srv.Connect() })
	defer src.Close()
	// The server counts a filtered consumer's pending messages in the background, so its
	// first info can lag behind the deletion and the delivery: ask again until it settles.
	var streams []dashboard.StreamInfo
	for deadline := time.Now().Add(5 * time.Second); ; {
		if streams, err = src.Streams(ctx); err != nil {
			t.Fatal(err)
		}
		if len(streams) == 2 && len(streams[1].Consumers) == 2 && streams[1].Consumers[0].NumPending == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(streams) != 2 || streams[0].Name != "DLQ" || !streams[0].DeadLetter || streams[1].Name != "ORDERS" || streams[1].DeadLetter {
		t.Fatalf("streams %+v", streams)
	}
	o := streams[1]
	if o.Messages != 4 || o.LastSeq != 5 || len(o.Consumers) != 2 || o.Consumers[1].Name != "orders-audit" {
		t.Fatalf("ORDERS %+v", o)
	}
	c := o.Consumers[0]
	if c.Name != "notifications" || c.FilterSubject != "order.placed" || c.NumPending != 2 || c.NumAckPending != 1 {
		t.Fatalf("consumer %+v", c) // 4 placed, 1 deleted, 1 delivered: 2 pending
	}

	msgs, err := src.Messages(ctx, "ORDERS", 3)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, m := range msgs {
		seqs = append(seqs, m.Sequence)
	}
	if fmt.Sprint(seqs) != "[5 3 2]" || msgs[0].Subject != "order.paid" || msgs[0].Data != `{"order":5}` || msgs[0].Header["Traceparent"][0] != "00-0123-01" {
		t.Fatalf("messages %+v", msgs)
	}
	dlq, err := src.Messages(ctx, "DLQ", 10)
	if err != nil || len(dlq) != 1 || dlq[0].Data != `"\xff\xfe"` || dlq[0].Subject != "dlq.order.placed" || dlq[0].Wire != "dlq.order.placed._k.3" {
		t.Fatalf("dead letters %+v, %v", dlq, err)
	}
	if _, err := src.Messages(ctx, "NOSUCH", 10); err == nil {
		t.Fatal("no error for a missing stream")
	}

	h := httptest.NewServer(dashboard.Handler(storeSystem(), dashboard.WithEventSource(src)))
	defer h.Close()
	var got struct {
		Configured bool                   `json:"configured"`
		Streams    []dashboard.StreamInfo `json:"streams"`
	}
	getJSON(t, h.URL+"/api/events", &got)
	if !got.Configured || len(got.Streams) != 2 {
		t.Fatalf("/api/events = %+v", got)
	}
	// The consumer named after the service orders appears in the architecture view.
	var edges []dashboard.Edge
	getJSON(t, h.URL+"/api/edges", &edges)
	if len(edges) != 1 || edges[0] != (dashboard.Edge{From: "order.paid", To: "orders", Kind: "consume"}) {
		t.Fatalf("edges %+v", edges)
	}
	var list []dashboard.Message
	if code := getJSON(t, h.URL+"/api/events/ORDERS?n=2", &list); code != 200 || len(list) != 2 {
		t.Fatalf("/api/events/ORDERS = %d %+v", code, list)
	}
	if code := getJSON(t, h.URL+"/api/events/NOSUCH", nil); code != 502 {
		t.Fatalf("/api/events/NOSUCH = %d", code)
	}

	off := httptest.NewServer(dashboard.Handler(storeSystem(), dashboard.WithEventSource(nil)))
	defer off.Close()
	getJSON(t, off.URL+"/api/events", &got)
	if got.Configured {
		t.Fatal("events configured after WithEventSource(nil)")
	}
}

func TestLogicalSubject(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"shop.orders.placed._k.3", "shop.orders.placed"},
		{"shop.orders.placed._k.12", "shop.orders.placed"},
		{"shop.orders.placed", "shop.orders.placed"},
		{"shop._k.x", "shop._k.x"},
		{"shop._k.3.more", "shop._k.3.more"},
		{"._k.1", ""},
		{"", ""},
	} {
		if got := dashboard.LogicalSubject(tc.in); got != tc.want {
			t.Errorf("LogicalSubject(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
