package natsserver_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
)

// TestAnonymousIsRefused checks that the embedded server refuses clients without
// credentials and with wrong ones, and accepts the admin URL.
func TestAnonymousIsRefused(t *testing.T) {
	ctx := context.Background()
	srv, err := natsserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	for name, url := range map[string]string{
		"anonymous":      srv.PlainURL(),
		"wrong password": natsserver.WithUserInfo(srv.PlainURL(), natsserver.AdminUser, "guess"),
	} {
		nc, err := nats.Connect(url, nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(err.Error(), "Authorization Violation") {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("admin URL: %v", err)
	}
	nc.Close()
	if strings.Contains(srv.PlainURL(), "@") {
		t.Errorf("PlainURL %q carries credentials", srv.PlainURL())
	}
}

// TestServiceUserPermissions runs two services' users on one server: each creates the
// shared stream, publishes its own events and consumes events through JetStream, and
// neither can publish the other's events or delete the stream.
func TestServiceUserPermissions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	orders := natsserver.ServiceUser("orders", "pw-orders", []string{"shop.orders.>"}, nil)
	notify := natsserver.ServiceUser("notifications", "pw-notify", []string{"shop.notifications.>"}, nil)
	srv, err := natsserver.Start(ctx, t.TempDir(), natsserver.WithUsers(orders, notify))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	connect := func(u natsserver.User, errs chan<- error) *nats.Conn {
		nc, err := nats.Connect(natsserver.WithUserInfo(srv.PlainURL(), u.Name, u.Password),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
		if err != nil {
			t.Fatalf("%s: %v", u.Name, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	stream := pubsub.Config{Stream: "SHOP", Subjects: []string{"shop.>"}, AckTimeout: time.Second}
	ordErrs, notErrs := make(chan error, 16), make(chan error, 16)
	ordNC, notNC := connect(orders, ordErrs), connect(notify, notErrs)
	ordBus, err := pubsub.New(ctx, ordNC, stream)
	if err != nil {
		t.Fatalf("orders creates the stream: %v", err)
	}
	notBus, err := pubsub.New(ctx, notNC, stream)
	if err != nil {
		t.Fatalf("notifications opens the stream: %v", err)
	}
	got := make(chan *pubsub.Message, 4)
	sub, err := notBus.Subscribe(ctx, "shop.orders.>", "notifications", func(_ context.Context, m *pubsub.Message) error {
		got <- m
		return nil
	})
	if err != nil {
		t.Fatalf("notifications subscribes: %v", err)
	}
	defer sub.Stop(ctx)
	if err := ordBus.Publish(ctx, &pubsub.Message{ID: "1", Subject: "shop.orders.confirmed", Data: []byte("{}")}); err != nil {
		t.Fatalf("orders publishes its own event: %v", err)
	}
	select {
	case m := <-got:
		if m.ID != "1" {
			t.Errorf("got event %s", m.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event never arrived")
	}

	// The forgery: notifications publishes an orders event.
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	err = notBus.Publish(pctx, &pubsub.Message{ID: "forged", Subject: "shop.orders.confirmed", Data: []byte("{}")})
	pcancel()
	if err == nil {
		t.Error("notifications published an orders event")
	}
	select {
	case e := <-notErrs:
		if !strings.Contains(strings.ToLower(e.Error()), "permissions violation") {
			t.Errorf("async error %v, want a permissions violation", e)
		}
	case <-time.After(5 * time.Second):
		t.Error("no permissions violation reported to the forger's connection")
	}
	select {
	case m := <-got:
		t.Errorf("forged event %s delivered", m.ID)
	case <-time.After(500 * time.Millisecond):
	}

	// A service may not delete the stream.
	js, err := jetstream.New(ordNC)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
	defer dcancel()
	if err := js.DeleteStream(dctx, "SHOP"); err == nil {
		t.Error("orders deleted the stream")
	}
	if _, err := js.Stream(ctx, "SHOP"); err != nil {
		t.Errorf("the stream is gone: %v", err)
	}
}

// TestAuthConfig loads the rendered authorization block with nats-server's own
// configuration parser, runs a server on it and checks who may connect and publish.
func TestAuthConfig(t *testing.T) {
	users := []natsserver.User{
		natsserver.ServiceUser("orders", "pw \"quoted\" {braces}\t\\x\x01", []string{"shop.orders.>"}, nil),
		natsserver.ServiceUser("gateway", "pw-gw", nil, nil),
	}
	conf := "listen: 127.0.0.1:-1\n" + natsserver.AuthConfig("admin-pw", users)
	path := t.TempDir() + "/nats.conf"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the configuration: %v\n%s", err, conf)
	}
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("server not ready")
	}
	url := ns.ClientURL()
	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("anonymous client connected")
	}
	errs := make(chan error, 4)
	nc, err := nats.Connect(url, nats.UserInfo("orders", "pw \"quoted\" {braces}\t\\x\x01"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("orders: %v", err)
	}
	defer nc.Close()
	_ = nc.Publish("shop.catalog.stock_low", nil)
	_ = nc.Flush()
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Errorf("got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("orders published a catalog event")
	}
	admin, err := nats.Connect(url, nats.UserInfo(natsserver.AdminUser, "admin-pw"))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	admin.Close()
}
