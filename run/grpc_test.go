package run_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/svckit/svckit/health"
	"github.com/svckit/svckit/run"
)

// TestGRPCHealthFollowsReadiness wires health.Watch to the gRPC health service of a real
// gRPC server run by a Group, and checks with a real health client that the service says
// SERVING once ready and NOT_SERVING as soon as shutdown starts, while the server is still
// up, and that the server then stops gracefully.
func TestGRPCHealthFollowsReadiness(t *testing.T) {
	ev := &events{}
	h := health.New()
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
	ln := listen(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g := newGroup(t)
	serve, stop := run.GRPCServer(gs, ln)
	g.Add("grpc", serve, func(ctx context.Context) error {
		ev.add("grpc stop")
		return stop(ctx)
	})
	ready := make(chan struct{})
	g.OnReady("health", func(context.Context) error {
		h.SetReady(true)
		close(ready)
		return nil
	})
	observed := make(chan struct{})
	g.OnShutdown(run.PhaseNotReady, "health", func(ctx context.Context) error {
		h.SetReady(false)
		// Stand-in for the drain delay: keep the server up until the client has seen
		// NOT_SERVING.
		select {
		case <-observed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	runErr := make(chan error, 1)
	go func() { runErr <- g.Run(ctx) }()
	<-ready

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	check := func() (healthpb.HealthCheckResponse_ServingStatus, error) {
		resp, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{})
		return resp.GetStatus(), err
	}

	if st, err := check(); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check after ready = %v %v, want SERVING", st, err)
	}
	watchCtx, stopWatch := context.WithCancel(t.Context())
	defer stopWatch()
	stream, err := client.Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := stream.Recv(); err != nil || msg.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch message = %v %v, want SERVING", msg.GetStatus(), err)
	}

	cancel() // shutdown starts
	msg, err := stream.Recv()
	if err != nil || msg.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch message after shutdown started = %v %v, want NOT_SERVING", msg.GetStatus(), err)
	}
	if st, err := check(); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Check during shutdown = %v %v, want NOT_SERVING from a server still serving", st, err)
	}
	ev.add("client saw NOT_SERVING")
	stopWatch() // an open Watch stream would hold GracefulStop until the deadline
	close(observed)

	if err := <-runErr; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	before(t, ev.snapshot(), []string{"client saw NOT_SERVING"}, []string{"grpc stop"})
	if _, err := check(); status.Code(err) != codes.Unavailable {
		t.Errorf("Check after Run returned: %v, want Unavailable", err)
	}
}
