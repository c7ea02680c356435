package svckit_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/pubsub"
	_ "github.com/svckit/svckit/store/sqlite"
)

// fullConfig is a service configuration with every battery's settings.
type fullConfig struct {
	svckit.Config
	svckit.StoreConfig
	svckit.NATSConfig
	PeerAddrs string `flag:"peer-addrs" env:"PEER_GRPC_ADDRS" help:"the peer"`
}

// newApp builds an App named name on loopback ports from cfg, env and extra args.
func newApp(t *testing.T, name string, cfg any, env map[string]string, args ...string) (*svckit.App, error) {
	t.Helper()
	base := []string{"-http-addr", "", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}
	return svckit.New(context.Background(), name, cfg, svckit.Options{
		Stdout:  &syncBuffer{},
		Args:    append(base, args...),
		Env:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Signals: []os.Signal{},
	})
}

// runApp runs app until the test ends and returns its admin URL once it is ready.
func runApp(t *testing.T, app *svckit.App) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	addr, err := app.Addr(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	admin := "http://" + addr.String()
	waitReady(t, admin)
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("app did not stop")
		}
	})
	return admin
}

// startNATS starts an embedded NATS server for the test.
func startNATS(t *testing.T) *natsserver.Server {
	t.Helper()
	srv, err := natsserver.Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

var testMigrations = fstest.MapFS{
	"migrations/001_items.sql": {Data: []byte("CREATE TABLE items (id TEXT PRIMARY KEY, n INTEGER NOT NULL);")},
}

// TestStoreBattery opens the store from STORE_DSN, applies the migrations, reports it in
// /readyz and closes it at shutdown.
func TestStoreBattery(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "items.db")
	app, err := newApp(t, "items", &fullConfig{}, map[string]string{"STORE_DSN": dsn, "NATS_URL": "nats://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.Store(context.Background(), testMigrations)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec("INSERT INTO items (id, n) VALUES ('a', 1)"); err != nil {
		t.Fatalf("the migration did not run: %v", err)
	}
	app.GRPC("test.Items")
	admin := runApp(t, app)
	resp, err := http.Get(admin + "/readyz?verbose=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "store") {
		t.Errorf("/readyz: %d %s, want 200 naming the store check", resp.StatusCode, body)
	}
}

// TestStoreBatteryErrors covers the ways App.Store is misused.
func TestStoreBatteryErrors(t *testing.T) {
	app, err := newApp(t, "plain", &svckit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.Store(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "embed svckit.StoreConfig") {
		t.Errorf("App.Store without StoreConfig: %v", err)
	}
	type storeOnly struct {
		svckit.Config
		svckit.StoreConfig
	}
	app, err = newApp(t, "pg", &storeOnly{}, map[string]string{"STORE_DSN": "postgres://127.0.0.1:1/x"})
	if err != nil {
		t.Fatal(err)
	}
	// This test binary links only the SQLite engine.
	if _, err := app.Store(context.Background(), nil); err == nil || !strings.Contains(err.Error(), `import _ "github.com/svckit/svckit/store/postgres"`) {
		t.Errorf("postgres DSN without the driver: %v", err)
	}
}

// TestStoreDefaultDSN opens sqlite:NAME.db in the working directory when STORE_DSN is empty.
func TestStoreDefaultDSN(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	type storeOnly struct {
		svckit.Config
		svckit.StoreConfig
	}
	app, err := newApp(t, "ledger", &storeOnly{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := app.Store(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(filepath.Join(dir, "ledger.db")); err != nil {
		t.Errorf("no ledger.db: %v", err)
	}
}

// TestConfigErrors checks the start-up errors of the batteries' and base settings: one
// line naming the setting.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  any
		env  map[string]string
		args []string
		want string
	}{
		{"no NATS_URL", &fullConfig{}, nil, nil, "-nats-url (NATS_URL) is required"},
		{"bad NATS_URL", &fullConfig{}, map[string]string{"NATS_URL": "http://x:4222"}, nil, "NATS_URL"},
		{"bad replicas", &fullConfig{}, map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "NATS_REPLICAS": "7"}, nil, "NATS_REPLICAS"},
		{"short duplicate window", &fullConfig{}, map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "NATS_DUPLICATE_WINDOW": "5s"}, nil, "NATS_DUPLICATE_WINDOW"},
		{"negative duplicate window", &fullConfig{}, map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "NATS_DUPLICATE_WINDOW": "-1m"}, nil, "NATS_DUPLICATE_WINDOW"},
		{"long duplicate window", &fullConfig{}, map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "NATS_DUPLICATE_WINDOW": "48h"}, nil, "NATS_DUPLICATE_WINDOW"},
		{"bad announce", &fullConfig{}, map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "ANNOUNCE": "etcd"}, nil, "ANNOUNCE"},
		{"negative timeout", &svckit.Config{}, nil, []string{"-request-timeout", "-1s"}, "-request-timeout (REQUEST_TIMEOUT)"},
		{"negative drain", &svckit.Config{}, nil, []string{"-drain-delay", "-5s"}, "must not be negative"},
		{"negative shutdown", &svckit.Config{}, nil, []string{"-shutdown-timeout", "-1ms"}, "-shutdown-timeout"},
		{"negative log flush", &svckit.Config{}, nil, []string{"-log-flush", "-1ms"}, "-log-flush"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newApp(t, "svc", tt.cfg, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tt.want)
			}
		})
	}
}

// TestBusAndOutboxBatteries writes an event through the outbox in the business
// transaction and receives it from the bus, on a real embedded NATS server.
func TestBusAndOutboxBatteries(t *testing.T) {
	srv := startNATS(t)
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "orders.db")
	app, err := newApp(t, "orders", &fullConfig{}, map[string]string{"STORE_DSN": dsn, "NATS_URL": srv.ClientURL(), "INSTANCE_ID": "orders-7"})
	if err != nil {
		t.Fatal(err)
	}
	if app.Instance() != "orders-7" {
		t.Errorf("Instance() = %q, want INSTANCE_ID", app.Instance())
	}
	ctx := context.Background()
	st, err := app.Store(ctx, testMigrations)
	if err != nil {
		t.Fatal(err)
	}
	bus, err := app.Bus(ctx, pubsub.Config{Stream: "ORDERS", Subjects: []string{"orders.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := app.Outbox(ctx, st, bus)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *pubsub.Message, 1)
	sub, err := bus.Subscribe(ctx, "orders.created", "test", func(_ context.Context, m *pubsub.Message) error {
		got <- m
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(ctx)
	app.GRPC("test.Orders")
	runApp(t, app)
	err = st.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("INSERT INTO items (id, n) VALUES ('o1', 2)"); err != nil {
			return err
		}
		return ob.Add(ctx, tx, &pubsub.Message{ID: "o1-created", Subject: "orders.created", Data: []byte(`{"id":"o1"}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.ID != "o1-created" || m.Source != "orders" || string(m.Data) != `{"id":"o1"}` {
			t.Errorf("event %s from %s: %s", m.ID, m.Source, m.Data)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the outbox event never arrived")
	}
}

// TestBusDuplicateWindow checks which duplicate window App.Bus gives the stream it
// creates or updates: NATS_DUPLICATE_WINDOW (default 2m) unless the service's
// pubsub.Config sets one, and that a republished event id within it is dropped.
func TestBusDuplicateWindow(t *testing.T) {
	srv := startNATS(t)
	tests := []struct {
		name string
		env  string // NATS_DUPLICATE_WINDOW, if set
		cfg  time.Duration
		want time.Duration
	}{
		{"default", "", 0, 2 * time.Minute},
		{"setting", "45s", 0, 45 * time.Second},
		{"service's own", "45s", 90 * time.Second, 90 * time.Second},
		{"setting again", "30s", 0, 30 * time.Second}, // the stream exists: updated
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"NATS_URL": srv.ClientURL()}
			if tt.env != "" {
				env["NATS_DUPLICATE_WINDOW"] = tt.env
			}
			app, err := newApp(t, "orders", &fullConfig{}, env)
			if err != nil {
				t.Fatal(err)
			}
			bus, err := app.Bus(ctx, pubsub.Config{Stream: "DW", Subjects: []string{"dw.>"}, DuplicateWindow: tt.cfg})
			if err != nil {
				t.Fatal(err)
			}
			defer bus.Close(ctx)
			nc, err := app.NATS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			s, err := js.Stream(ctx, "DW")
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.Duplicates; got != tt.want {
				t.Errorf("stream duplicate window %v, want %v", got, tt.want)
			}
			before := s.CachedInfo().State.Msgs
			id := "evt-" + tt.name
			for range 2 {
				if err := bus.Publish(ctx, &pubsub.Message{ID: id, Subject: "dw.x", Data: []byte("{}")}); err != nil {
					t.Fatal(err)
				}
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := info.State.Msgs - before; n != 1 {
				t.Errorf("an event published twice is stored %d times, want once", n)
			}
		})
	}
}

// TestDialTargets checks how App.Dial reads its targets.
func TestDialTargets(t *testing.T) {
	ctx := context.Background()
	app, err := newApp(t, "caller", &svckit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := app.Dial(ctx, "orders", "127.0.0.1:1, 127.0.0.1:2")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cc.(*grpc.ClientConn); !ok {
		t.Errorf("a fixed list dialled as %T, want *grpc.ClientConn", cc)
	}
	for target, want := range map[string]string{
		"natskv:":       "embed svckit.NATSConfig",
		"dns:///":       "names no host:port",
		"dns:///orders": "neither an SRV name nor host:port",
		"":              "set ORDERS_GRPC_ADDRS",
		"http://x:1":    "want host:port",
		"127.0.0.1":     "missing port",
	} {
		_, err := app.Dial(ctx, "orders", target)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("target %q: %v, want an error with %q", target, err, want)
		}
	}
}

// TestDialDNS finds a gRPC server through a dns:/// target and calls it through the
// balanced connection.
func TestDialDNS(t *testing.T) {
	addr := startHealthServer(t)
	app, err := newApp(t, "caller", &svckit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An IP address needs no DNS server: the watcher's lookup returns it as it is.
	cc, err := app.Dial(context.Background(), "health", "dns:///"+addr)
	if err != nil {
		t.Fatal(err)
	}
	checkServing(t, cc)
}

func startHealthServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// checkServing calls grpc.health.v1 through cc until it answers SERVING.
func checkServing(t *testing.T, cc grpc.ClientConnInterface) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no SERVING answer through the connection: %v %v", resp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAnnounceAndDialNATSKV runs a service that announces itself in the natskv registry
// (ANNOUNCE=natskv) and calls it from another App through a natskv: target, on a real
// embedded NATS server.
func TestAnnounceAndDialNATSKV(t *testing.T) {
	srv := startNATS(t)
	env := map[string]string{"NATS_URL": srv.ClientURL(), "ANNOUNCE": "natskv"}
	type natsOnly struct {
		svckit.Config
		svckit.NATSConfig
	}
	callee, err := newApp(t, "adder", &natsOnly{}, env)
	if err != nil {
		t.Fatal(err)
	}
	addsvc.RegisterGRPC(callee.GRPC(addsvc.GRPCService), addsvc.MakeEndpoints(addsvc.New()))
	runApp(t, callee)

	caller, err := newApp(t, "caller", &natsOnly{}, map[string]string{"NATS_URL": srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := caller.Dial(context.Background(), "adder", "natskv:")
	if err != nil {
		t.Fatal(err)
	}
	checkServing(t, cc)
	client := addsvc.NewClient(addsvc.NewGRPCClient(cc, caller.GRPCClientOptions()...))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sum, err := client.Sum(ctx, 2, 3)
	if err != nil || sum != 5 {
		t.Fatalf("Sum through natskv: %v %v", sum, err)
	}
}

// TestUseAfterServersFailsLoudly checks that middleware added after the servers were
// made is not silently dropped: Run refuses to start.
func TestUseAfterServersFailsLoudly(t *testing.T) {
	app, err := newApp(t, "late", &svckit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), addsvc.MakeEndpoints(addsvc.New()))
	app.Use(func(_ endpoint.Info, next endpoint.Handler) endpoint.Handler { return next })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Run(ctx); err == nil || !strings.Contains(err.Error(), "App.Use called after") {
		t.Fatalf("Run = %v, want the Use-after-servers error", err)
	}
}

// TestMiddlewareIsACopy checks that the chains handed out cannot change the App's.
func TestMiddlewareIsACopy(t *testing.T) {
	app, err := newApp(t, "copy", &svckit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := app.Middleware()
	n := len(m)
	m[0] = nil
	_ = append(m, nil)
	if got := app.Middleware(); len(got) != n || got[0] == nil {
		t.Error("changing Middleware's result changed the App's chain")
	}
	c := app.ClientMiddleware()
	c[0] = nil
	if app.ClientMiddleware()[0] == nil {
		t.Error("changing ClientMiddleware's result changed the App's chain")
	}
}

// TestPayOnlyForWhatYouUse checks that a service without a store or a bus links neither
// the embedded NATS server nor a database engine: addsvc's dependencies name none of them.
func TestPayOnlyForWhatYouUse(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Module", "./examples/addsvc").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Module     *struct{ Path string }
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		for _, heavy := range []string{"github.com/nats-io/nats-server/v2", "github.com/jackc/pgx/v5", "modernc.org/sqlite"} {
			if p.Module != nil && p.Module.Path == heavy {
				t.Errorf("addsvc links %s (package %s)", heavy, p.ImportPath)
			}
		}
	}
}

// TestNATSIdentity connects with a service user's credentials, publishes its own events,
// and has a forged publish on another service's subject refused, logged and counted; an
// unknown password is a start-up error.
func TestNATSIdentity(t *testing.T) {
	catalog := natsserver.ServiceUser("catalog", "pw-catalog", []string{"shop.catalog.>"}, nil)
	srv, err := natsserver.Start(context.Background(), t.TempDir(), natsserver.WithUsers(catalog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	type natsOnly struct {
		svckit.Config
		svckit.NATSConfig
	}
	logs := &syncBuffer{}
	env := map[string]string{"NATS_URL": srv.PlainURL(), "NATS_USER": "catalog", "NATS_PASSWORD": "pw-catalog"}
	app, err := svckit.New(context.Background(), "catalog", &natsOnly{}, svckit.Options{
		Stdout: logs, Args: []string{"-http-addr", "", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-log-flush", "0s"},
		Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }, Signals: []os.Signal{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	bus, err := app.Bus(ctx, pubsub.Config{Stream: "SHOP", Subjects: []string{"shop.>"}, AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, &pubsub.Message{ID: "s1", Subject: "shop.catalog.stock_low", Data: []byte("{}")}); err != nil {
		t.Fatalf("own event: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := bus.Publish(pctx, &pubsub.Message{ID: "f1", Subject: "shop.orders.confirmed", Data: []byte("{}")}); err == nil {
		t.Fatal("catalog published an orders event")
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "nats permission denied") {
		if time.Now().After(deadline) {
			t.Fatalf("no permission-denied log line:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	app.GRPC("test.Catalog")
	admin := runApp(t, app)
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Each attempt of the publish (it repeats after its ack timeout) is refused and counted.
	if !regexp.MustCompile(`(?m)^svckit_nats_permission_denied_total [1-9]`).Match(body) {
		t.Errorf("metric not counted:\n%s", grepLines(string(body), "svckit_nats"))
	}

	env["NATS_PASSWORD"] = "wrong"
	app2, err := newApp(t, "catalog", &natsOnly{}, env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app2.NATS(ctx); err == nil || !strings.Contains(err.Error(), "Authorization Violation") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong password: %v, want an authorization violation without the password", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
