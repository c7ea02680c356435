package pubsub_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/pubsub/pubsubtest"
)

func TestConformanceEmbedded(t *testing.T) {
	ctx := context.Background()
	srv, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	pubsubtest.Run(t, pubsubtest.Options{
		Prefix: "events.",
		New: func(t *testing.T) pubsubtest.Backend {
			nc, err := srv.Connect()
			if err != nil {
				t.Fatal(err)
			}
			b, err := pubsub.New(ctx, nc, pubsub.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close(context.Background()); nc.Close() })
			return b
		},
	})
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := natsserver.StartCluster(ctx, 3, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Shutdown(context.Background()) })
	stopped := false
	pubsubtest.Run(t, pubsubtest.Options{
		Prefix: "events.",
		New: func(t *testing.T) pubsubtest.Backend {
			b, err := pubsub.Connect(ctx, pubsub.Config{URL: c.URLs(), Replicas: 3},
				pubsub.WithNATSOptions(nats.ReconnectWait(50*time.Millisecond)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close(context.Background()) })
			return b
		},
		Disrupt: func(t *testing.T) {
			if stopped {
				return
			}
			stopped = true
			t.Log("stopping node 0")
			if err := c.Stop(ctx, 0); err != nil {
				t.Error(err)
			}
		},
	})
}
