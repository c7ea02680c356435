package svckit_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/natsserver"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
	"github.com/svckit/svckit/transport/natsrpc"
)

type natsApp struct {
	svckit.Config
	svckit.NATSConfig
}

type addReq struct {
	A int `json:"a"`
	B int `json:"b"`
}

// newNATSApp builds an App on loopback ports with NATS_URL set to url and spans recorded
// in exp.
func newNATSApp(t *testing.T, name string, env map[string]string, logs *syncBuffer, exp *tracetest.InMemoryExporter) *svckit.App {
	t.Helper()
	opts := svckit.Options{
		Stdout:  logs,
		Args:    []string{"-http-addr", "", "-grpc-addr", "", "-admin-addr", "127.0.0.1:0", "-log-flush", "0s"},
		Env:     func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Signals: []os.Signal{},
	}
	if exp != nil {
		opts.SpanExporter = exp
	}
	app, err := svckit.New(context.Background(), name, &natsApp{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return app
}

// requireToken is server middleware that wants "Authorization: Bearer t0ken".
func requireToken(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
	return func(ctx context.Context, req any) (any, error) {
		if meta.BearerToken(ctx) != "t0ken" {
			return nil, svcerr.New(svcerr.Unauthenticated, "token required")
		}
		return next(ctx, req)
	}
}

// TestAppNATSRPC serves a method through App.NATSRPC and calls it through a client with
// App.NATSRPCClientOptions: the App's chain runs on both sides (one trace, access log
// lines), middleware added with App.Use sees the caller's header, and the App drains the
// subscription at shutdown.
func TestAppNATSRPC(t *testing.T) {
	ns := startNATS(t)
	env := map[string]string{"NATS_URL": ns.ClientURL()}
	srvLogs, srvSpans := &syncBuffer{}, tracetest.NewInMemoryExporter()
	app := newNATSApp(t, "adder", env, srvLogs, srvSpans)
	app.Use(requireToken)
	srv, err := app.NATSRPC("adder")
	if err != nil {
		t.Fatal(err)
	}
	natsrpc.Handle(srv, "Sum", func(_ context.Context, r addReq) (int, error) { return r.A + r.B, nil })
	if again, err := app.NATSRPC("adder"); err != nil || again != srv {
		t.Fatalf("second NATSRPC(adder) = %p, %v; want the first server %p", again, err, srv)
	}
	runApp(t, app)

	callerSpans := tracetest.NewInMemoryExporter()
	caller := newNATSApp(t, "caller", env, &syncBuffer{}, callerSpans)
	nc, err := caller.NATS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sum := natsrpc.Call[addReq, int](natsrpc.NewClient(nc, "adder", caller.NATSRPCClientOptions()...), "Sum")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sum(ctx, addReq{A: 1, B: 2}); svcerr.KindOf(err) != svcerr.Unauthenticated {
		t.Fatalf("call without token: %v, want unauthenticated", err)
	}
	got, err := sum(meta.WithOutgoingHeader(ctx, "Authorization", "Bearer t0ken"), addReq{A: 1, B: 2})
	if err != nil || got != 3 {
		t.Fatalf("Sum = %d, %v", got, err)
	}
	if err := caller.TracerProvider().ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := app.TracerProvider().ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}
	cs, ss := callerSpans.GetSpans(), srvSpans.GetSpans()
	if len(cs) != 2 || len(ss) != 2 {
		t.Fatalf("%d client and %d server spans, want 2 each", len(cs), len(ss))
	}
	if cs[1].SpanContext.TraceID() != ss[1].SpanContext.TraceID() || ss[1].Parent.SpanID() != cs[1].SpanContext.SpanID() {
		t.Fatalf("server span %v is not the child of client span %v", ss[1].Parent, cs[1].SpanContext)
	}
	if ss[1].Name != "adder/Sum" {
		t.Fatalf("server span %q", ss[1].Name)
	}
	var logged bool
	for _, l := range srvLogs.lines() {
		if l["msg"] == "request" && l["transport"] == "nats" && l["rpc_method"] == "Sum" && l["rpc_service"] == "adder" {
			logged = true
		}
	}
	if !logged {
		t.Fatalf("no access log line for Sum:\n%s", srvLogs.String())
	}
}

// TestAppNATSRPCDrainsAtShutdown stops the App while a call is in flight: the call
// finishes and Run returns cleanly.
func TestAppNATSRPCDrainsAtShutdown(t *testing.T) {
	ns := startNATS(t)
	env := map[string]string{"NATS_URL": ns.ClientURL()}
	app := newNATSApp(t, "slow", env, &syncBuffer{}, nil)
	srv, err := app.NATSRPC("slow")
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	natsrpc.Handle(srv, "Do", func(context.Context, struct{}) (string, error) {
		close(started)
		<-release
		return "done", nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	addr, err := app.Addr(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, "http://"+addr.String())
	nc := connectNATS(t, ns.ClientURL())
	result := make(chan error, 1)
	go func() {
		got, err := natsrpc.Call[struct{}, string](natsrpc.NewClient(nc, "slow"), "Do")(context.Background(), struct{}{})
		if err == nil && got != "done" {
			err = svcerr.Errorf(svcerr.Internal, "got %q", got)
		}
		result <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a call in flight", err)
	case err := <-result:
		t.Fatalf("call returned (%v) before it was released", err)
	case <-time.After(100 * time.Millisecond): // the shutdown has begun and waits for the call
	}
	close(release)
	if err := <-result; err != nil {
		t.Fatalf("call in flight: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestAppNATSRPCErrors(t *testing.T) {
	// The service's NATS user may not subscribe its subjects: the App stops with the error.
	ns, err := natsserver.Start(context.Background(), t.TempDir(),
		natsserver.WithUsers(natsserver.ServiceUser("calc", "pw", nil, []string{"svc.other.>"})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Shutdown(context.Background()) })
	tests := []struct {
		name  string
		env   map[string]string
		setup func(app *svckit.App)
		want  string
	}{
		{"no permission", map[string]string{"NATS_URL": ns.PlainURL(), "NATS_USER": "calc", "NATS_PASSWORD": "pw"},
			func(*svckit.App) {}, "no permission to subscribe svc.calc.Sum"},
		{"Use after NATSRPC", map[string]string{"NATS_URL": ns.ClientURL()},
			func(app *svckit.App) { app.Use(requireToken) }, "or App.NATSRPC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newNATSApp(t, "calc", tt.env, &syncBuffer{}, nil)
			srv, err := app.NATSRPC("calc")
			if err != nil {
				t.Fatal(err)
			}
			natsrpc.Handle(srv, "Sum", func(_ context.Context, r addReq) (int, error) { return r.A + r.B, nil })
			tt.setup(app)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := app.Run(ctx); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// Without NATS settings there is no NATSRPC.
	app, err := newApp(t, "plain", &svckit.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.NATSRPC("plain"); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Fatalf("NATSRPC without NATSConfig: %v", err)
	}
}

// connectNATS connects to url for the test.
func connectNATS(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// A service served on NATS request/reply: the methods of "adder" answer on
// svc.adder.<Method> in the queue group "adder", with the App's middleware, while the
// App runs. Callers need only a NATS connection.
func ExampleApp_NATSRPC() {
	ctx, stop := context.WithCancel(context.Background())
	dir, _ := os.MkdirTemp("", "natsrpc-example")
	defer os.RemoveAll(dir)
	ns, err := natsserver.Start(ctx, dir) // `svckit dev` and tests start one; production has its own
	if err != nil {
		panic(err)
	}
	defer ns.Shutdown(context.Background())
	env := map[string]string{"NATS_URL": ns.ClientURL()}
	app, err := svckit.New(ctx, "adder", &natsApp{}, svckit.Options{
		Args:   []string{"-http-addr", "", "-grpc-addr", "", "-admin-addr", "127.0.0.1:0"},
		Env:    func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Stdout: io.Discard,
	})
	if err != nil {
		panic(err)
	}
	srv, err := app.NATSRPC("adder")
	if err != nil {
		panic(err)
	}
	natsrpc.Handle(srv, "Sum", func(_ context.Context, r addReq) (int, error) { return r.A + r.B, nil })
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	sum := natsrpc.Call[addReq, int](natsrpc.NewClient(nc, "adder"), "Sum")
	// Until the App has subscribed, NATS answers "no responders" and the client retries.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fmt.Println(sum(cctx, addReq{A: 2, B: 3}))

	stop() // as SIGTERM would: the subscription drains, then the connection closes
	fmt.Println("stopped:", <-done)
	// Output:
	// 5 <nil>
	// stopped: <nil>
}
