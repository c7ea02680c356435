package mtls_test

import (
	"context"
	"crypto/tls"
	"syscall"
	"testing"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	sgrpc "github.com/svckit/svckit/transport/grpc"
)

// BenchmarkUnaryGRPC compares a unary gRPC call through svckit's server and client over
// one reused connection, plaintext and under mTLS; the endpoint reads the caller's
// identity in both (under plaintext there is none). The difference is the cost of TLS
// record encryption and of reading the identity, not of handshakes.
//
//	go test -run '^$' -bench UnaryGRPC -count 8 ./mtls
func BenchmarkUnaryGRPC(b *testing.B) {
	p := newPKI(b)
	orders, gateway := p.source(b, "orders"), p.source(b, "gateway")
	for _, bc := range []struct {
		name           string
		server, client *tls.Config
	}{
		{"plaintext", nil, nil},
		{"mtls", orders.ServerTLS(), gateway.ClientTLS("orders")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := startGRPC(b, bc.server)
			cc, err := grpcgo.NewClient("passthrough:///"+srv.addr, sgrpc.DialCredentials(bc.client))
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			call := sgrpc.UnaryCall(sgrpc.NewClient(cc, whoService), "Who",
				func(s string) (*wrapperspb.StringValue, error) { return wrapperspb.String(s), nil },
				func(r *wrapperspb.StringValue) (string, error) { return r.GetValue(), nil })
			ctx := context.Background()
			want := "<none>/"
			if bc.server != nil {
				want = "gateway/" + gateway.Certificate().SerialNumber.Text(16)
			}
			if out, err := call(ctx, ""); err != nil || out != want {
				b.Fatalf("%q, %v; want %q", out, err, want)
			}
			b.ReportAllocs()
			cpu0, n := cpuTime(), 0
			for b.Loop() {
				if _, err := call(ctx, "hello"); err != nil {
					b.Fatal(err)
				}
				n++
			}
			// CPU time of the process (client and server) per call: steadier than ns/op
			// on a machine shared with other work.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(n), "cpu-ns/op")
		})
	}
}

// cpuTime returns the user and system CPU time of the process so far, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
