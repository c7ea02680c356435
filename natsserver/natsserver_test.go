package natsserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/natsserver"
)

func TestStartConnectRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	tests := []struct {
		name string
		opts []natsserver.Option
		tcp  bool
	}{
		{"random port", nil, true},
		{"in-process only", []natsserver.Option{natsserver.WithoutListener()}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := natsserver.Start(ctx, dir, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown(ctx)
			var nc *nats.Conn
			if tc.tcp {
				nc, err = nats.Connect(s.ClientURL())
			} else {
				if s.ClientURL() != "" {
					t.Fatalf("ClientURL = %q, want empty", s.ClientURL())
				}
				nc, err = s.Connect()
			}
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, "s.x", []byte("hi")); err != nil {
				t.Fatal(err)
			}
			info, err := st.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The store directory is shared by both cases: the second server finds the
			// first message on disk.
			if info.State.Msgs == 0 {
				t.Fatalf("stream has no messages")
			}
		})
	}
}

func TestClusterSurvivesStoppedNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	c, err := natsserver.StartCluster(ctx, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown(context.Background())
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		for i := 0; i < n; {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(pctx, "r3.x", []byte("m"), jetstream.WithMsgID(time.Now().String()+string(rune(i))))
			pcancel()
			if err != nil {
				if ctx.Err() != nil {
					t.Fatal(err)
				}
				continue // leader election in progress
			}
			i++
		}
	}
	publish(10)
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	publish(10)
	if err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	publish(10)
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 30 {
		t.Fatalf("stream has %d messages, want 30", info.State.Msgs)
	}
}
