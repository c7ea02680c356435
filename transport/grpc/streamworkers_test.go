package grpc

import (
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestStreamWorkers(t *testing.T) {
	for _, tc := range []struct {
		procs int
		want  uint32
	}{
		{procs: 1, want: 32},
		{procs: 2, want: 32},
		{procs: 3, want: 48},
		{procs: 8, want: 128},
		{procs: 64, want: 1024},
		{procs: 256, want: 1024},
	} {
		if got := streamWorkers(tc.procs); got != tc.want {
			t.Errorf("streamWorkers(%d) = %d, want %d", tc.procs, got, tc.want)
		}
	}
}

// TestCallsBeyondStreamWorkers holds more calls open at once than NewGRPCServer has stream
// workers: every call must reach its handler (grpc-go's goroutine-per-call fallback), so
// that calls that hold every worker never hold up the next one.
func TestCallsBeyondStreamWorkers(t *testing.T) {
	n := int(streamWorkers(runtime.GOMAXPROCS(0))) + 8
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	desc := grpcgo.ServiceDesc{
		ServiceName: "svckit.test.Hold",
		HandlerType: (*any)(nil),
		Methods: []grpcgo.MethodDesc{{
			MethodName: "Hold",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpcgo.UnaryServerInterceptor) (any, error) {
				var in wrapperspb.StringValue
				if err := dec(&in); err != nil {
					return nil, err
				}
				arrived <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
				}
				return &in, nil
			},
		}},
	}
	srv := NewGRPCServer(nil)
	srv.RegisterService(&desc, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for range n {
		go func() {
			var out wrapperspb.StringValue
			errs <- cc.Invoke(ctx, "/svckit.test.Hold/Hold", wrapperspb.String("x"), &out)
		}()
	}
	for i := range n {
		select {
		case <-arrived:
		case err := <-errs:
			t.Fatalf("a call ended before all %d were held: %v", n, err)
		case <-ctx.Done():
			t.Fatalf("%d of %d calls reached their handler with %d stream workers", i, n, n-8)
		}
	}
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("call: %v", err)
		}
	}
}
