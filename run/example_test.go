package run_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/svckit/svckit/health"
	"github.com/svckit/svckit/run"
)

func ExampleGroup() {
	h := health.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}

	// In a service, SIGINT or SIGTERM starts the shutdown; here the OnReady hook cancels
	// the context instead.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	g := run.NewGroup(run.WithLogger(nil), run.WithShutdownTimeout(5*time.Second))
	serve, stop := run.HTTPServer(&http.Server{Handler: health.AdminMux(h, nil)}, ln)
	g.Add("admin", serve, stop)
	g.OnReady("health", func(ctx context.Context) error {
		h.SetReady(true)
		fmt.Println("ready")
		cancel()
		return nil
	})
	g.OnShutdown(run.PhaseNotReady, "health", func(ctx context.Context) error {
		h.SetReady(false)
		fmt.Println("not ready")
		return nil
	})
	g.OnShutdown(run.PhaseClose, "store", func(ctx context.Context) error {
		fmt.Println("store closed")
		return nil
	})
	g.OnShutdown(run.PhaseFlush, "traces", func(ctx context.Context) error {
		fmt.Println("traces flushed")
		return nil
	})

	err = g.Run(ctx)
	fmt.Println("Run:", err)
	// Output:
	// ready
	// not ready
	// store closed
	// traces flushed
	// Run: <nil>
}

// Example_service shows the lifecycle of a service with a public gRPC listener and an admin
// HTTP listener whose readiness drives the gRPC health service.
func Example_service() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	h := health.New()
	h.AddReadiness("db", func(ctx context.Context) error { return nil /* db.PingContext(ctx) */ })

	gs := grpc.NewServer()
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	h.Watch(func(ready bool) {
		st := healthpb.HealthCheckResponse_NOT_SERVING
		if ready {
			st = healthpb.HealthCheckResponse_SERVING
		}
		hs.SetServingStatus("", st)
	})

	grpcLn, err := net.Listen("tcp", ":8081")
	if err != nil {
		logger.Error("listen", "error", err)
		os.Exit(1)
	}
	adminLn, err := net.Listen("tcp", ":9090")
	if err != nil {
		logger.Error("listen", "error", err)
		os.Exit(1)
	}

	g := run.NewGroup(run.WithLogger(logger), run.WithDrainDelay(3*time.Second))
	serve, stop := run.GRPCServer(gs, grpcLn)
	g.Add("grpc", serve, stop)
	serve, stop = run.HTTPServer(&http.Server{Handler: health.AdminMux(h, nil)}, adminLn)
	g.Add("admin", serve, stop)
	g.OnReady("health", func(context.Context) error { h.SetReady(true); return nil })
	g.OnShutdown(run.PhaseNotReady, "health", func(context.Context) error { h.SetReady(false); return nil })
	g.OnShutdown(run.PhaseClose, "db", func(ctx context.Context) error { return nil /* db.Close() */ })

	if err := g.Run(context.Background()); err != nil {
		logger.Error("exit", "error", err)
		os.Exit(1)
	}
}
