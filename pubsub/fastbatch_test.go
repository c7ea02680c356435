package pubsub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/natsserver"
)

// The tests of fast batch publishing, on the embedded server.

// newFastBus returns a bus on an embedded server of its own.
func newFastBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	ctx := context.Background()
	srv, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()); nc.Close() })
	return b
}

func batchOf(n int, prefix string) []*Message {
	msgs := make([]*Message, n)
	for i := range msgs {
		msgs[i] = &Message{ID: fmt.Sprintf("%s-%04d", prefix, i), Subject: "events.fast", Key: fmt.Sprint(i % 7), Data: []byte(fmt.Sprint(i))}
	}
	return msgs
}

// streamIDs returns the Nats-Msg-Id of every message in the stream, in stream order.
func streamIDs(t *testing.T, b *Bus) []string {
	t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Header.Get(nats.MsgIdHdr))
	}
	return ids
}

func TestFastBatch(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cfg     Config
		fast    bool
		n       int
		publish int // times the same messages are published
	}{
		{"fast batch", Config{}, true, 300, 1},
		{"split into batches of 1000", Config{}, true, 2500, 1},
		{"published again: duplicates dropped", Config{}, true, 300, 3},
		{"below the batch minimum", Config{}, true, fastBatchMin - 1, 1},
		{"NoBatchPublish", Config{NoBatchPublish: true}, false, 300, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newFastBus(t, tc.cfg)
			if (b.fast != nil) != tc.fast {
				t.Fatalf("fast batches on: %v, want %v", b.fast != nil, tc.fast)
			}
			var answers atomic.Int64
			if b.fast != nil {
				// Count what the server sends to the batch inbox.
				sub, err := b.nc.Subscribe(b.fast.prefix+".>", func(*nats.Msg) { answers.Add(1) })
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Unsubscribe()
			}
			msgs := batchOf(tc.n, "ev")
			for range tc.publish {
				if err := b.Publish(ctx, msgs...); err != nil {
					t.Fatal(err)
				}
			}
			ids := streamIDs(t, b)
			if len(ids) != tc.n {
				t.Fatalf("stream holds %d messages, want %d", len(ids), tc.n)
			}
			for i, id := range ids {
				if want := msgs[i].ID; id != want {
					t.Fatalf("stream message %d is %s, want %s (order)", i, id, want)
				}
			}
			if tc.fast && tc.n >= fastBatchMin && tc.publish == 1 {
				// The final acknowledgement reached Publish; the counting subscription
				// gets its copy on its own goroutine.
				for deadline := time.Now().Add(10 * time.Second); answers.Load() == 0 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				if n, max := answers.Load(), int64(4*(tc.n/fastBatchMax+1)*(1+fastBatchMax/fastBatchFlow)); n == 0 || n > max {
					t.Fatalf("%d answers from the server for %d messages, want 1..%d", n, tc.n, max)
				}
			}
		})
	}
}

// TestFastBatchRefused: when the stream stops taking fast batches (its configuration
// changed under a running bus), Publish falls back to one acknowledgement per message,
// and nothing is lost or stored twice.
func TestFastBatchRefused(t *testing.T) {
	ctx := context.Background()
	b := newFastBus(t, Config{AckTimeout: 2 * time.Second})
	if b.fast == nil {
		t.Fatal("fast batches off")
	}
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowBatchPublish = false
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	msgs := batchOf(50, "refused")
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if ids := streamIDs(t, b); len(ids) != 50 || ids[0] != msgs[0].ID || ids[49] != msgs[49].ID {
		t.Fatalf("stream holds %d messages (%v…), want the 50 published, in order", len(ids), ids[:min(len(ids), 3)])
	}
}

// TestFastBatchExistingStream: a stream created before fast batches (by an older
// version) is updated to take them.
func TestFastBatchExistingStream(t *testing.T) {
	ctx := context.Background()
	srv, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	nc, err := srv.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage,
		MaxAge: 7 * 24 * time.Hour, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	b, err := New(ctx, nc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if b.fast == nil {
		t.Fatal("fast batches off on an existing stream")
	}
	msgs := batchOf(100, "old")
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if ids := streamIDs(t, b); len(ids) != 100 {
		t.Fatalf("stream holds %d messages, want 100", len(ids))
	}
}

// TestFastBatchConsumed: messages published in fast batches reach a subscription with
// their attributes, each once, and each key's in order.
func TestFastBatchConsumed(t *testing.T) {
	ctx := context.Background()
	b := newFastBus(t, Config{Source: "fast"})
	got := make(chan *Message, 1000)
	sub, err := b.Subscribe(ctx, "events.fast", "g", func(_ context.Context, m *Message) error {
		got <- m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	msgs := batchOf(500, "c")
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	last := map[string]int{}
	seen := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(seen) < len(msgs) {
		select {
		case m := <-got:
			if seen[m.ID] {
				t.Fatalf("%s delivered twice", m.ID)
			}
			seen[m.ID] = true
			var i int
			fmt.Sscanf(string(m.Data), "%d", &i)
			if p, ok := last[m.Key]; ok && p > i {
				t.Fatalf("key %s: %d after %d", m.Key, i, p)
			}
			last[m.Key] = i
			if m.Source != "fast" || m.Subject != "events.fast" || m.ID != msgs[i].ID {
				t.Fatalf("message %+v", m)
			}
		case <-timeout:
			t.Fatalf("%d of %d messages delivered", len(seen), len(msgs))
		}
	}
}
