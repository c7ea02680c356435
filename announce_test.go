package svckit_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
)

// TestAnnounce checks that an App registers its gRPC address once ready and deregisters
// at shutdown.
func TestAnnounce(t *testing.T) {
	reg := discovery.NewStatic()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app, err := svckit.New(ctx, "addsvc", &svckit.Config{}, svckit.Options{
		Stdout: &syncBuffer{}, Env: func(string) (string, bool) { return "", false }, Signals: []os.Signal{},
		Args: []string{"-http-addr", "", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), addsvc.MakeEndpoints(addsvc.New()))
	app.Announce(reg, map[string]string{"version": "v1"})
	watch, err := reg.Watch(ctx, "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	grpcAddr, err := app.Addr(ctx, "grpc")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for registered := false; !registered; {
		select {
		case set := <-watch:
			if len(set) == 1 && set[0].Addr == grpcAddr.String() && set[0].Version() == "v1" {
				registered = true
			}
		case <-deadline:
			t.Fatal("never registered")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Watch's context ended with cancel; read the registry's current set directly.
	w2, err := reg.Watch(context.Background(), "addsvc")
	if err != nil {
		t.Fatal(err)
	}
	if set := <-w2; len(set) != 0 {
		t.Fatalf("still registered after shutdown: %v", set)
	}
}
