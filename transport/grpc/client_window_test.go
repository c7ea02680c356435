package grpc_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	svcgrpc "github.com/svckit/svckit/transport/grpc"
)

// TestFixedWindowsCarryLargeMessages checks that the fixed flow-control windows of
// NewGRPCServer and DialOptions still carry messages larger than either window, one at a
// time and several at once over one connection (which share its window), in both
// directions.
func TestFixedWindowsCarryLargeMessages(t *testing.T) {
	srv := svcgrpc.NewServer(echoService)
	newService().register(srv)
	g := svcgrpc.NewGRPCServer(nil)
	srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	cc, err := grpcgo.NewClient(lis.Addr().String(), append(svcgrpc.DialOptions(), grpcgo.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	echo := svcgrpc.UnaryCall(svcgrpc.NewClient(cc, echoService), "Echo", encEchoRequest, decEchoReply)

	size := 3 * svcgrpc.WindowSize // above both windows, below DefaultMaxRecvMsgSize
	if size >= svcgrpc.DefaultMaxRecvMsgSize || size <= svcgrpc.ConnWindowSize {
		t.Fatalf("message size %d must exceed the windows and stay under the 4 MiB limit", size)
	}
	text := strings.Repeat("x", size)
	want := strings.ToUpper(text)
	tests := []struct {
		name  string
		calls int
	}{
		{"one call", 1},
		{"four calls at once", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			errs := make(chan error, tt.calls)
			for range tt.calls {
				go func() {
					got, err := echo(ctx, msg{Text: text})
					if err == nil && got.Text != want {
						err = errMismatch
					}
					errs <- err
				}()
			}
			for range tt.calls {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

var errMismatch = errors.New("the echoed text differs from what was sent")
