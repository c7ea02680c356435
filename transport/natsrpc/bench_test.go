package natsrpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/transport/natsrpc"
)

// rawCodec carries a message's bytes as they are, so that gRPC and NATS move the same
// JSON payload and do the same JSON work on each side.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

// sumBytes answers a JSON sumReq with a JSON sumResp, as an endpoint with the JSON codec
// does.
func sumBytes(in []byte) ([]byte, error) {
	var r sumReq
	if err := json.Unmarshal(in, &r); err != nil {
		return nil, err
	}
	return json.Marshal(sumResp{V: r.A + r.B})
}

// cpuTime returns the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs call in the benchmark loop and reports calls/s and the process's CPU time
// per call (client, server and, for NATS, the embedded broker: all in this process).
func measure(b *testing.B, call func() error) {
	b.ReportAllocs()
	cpu0, t0 := cpuTime(), time.Now()
	for b.Loop() {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	cpu, el := cpuTime()-cpu0, time.Since(t0)
	b.ReportMetric(float64(b.N)/el.Seconds(), "calls/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkNATSRPC compares one unary call with a JSON payload over loopback, one caller
// at a time, through natsrpc's client and server on the embedded NATS server, through
// bare nats.go request/reply on the same server, and through bare grpc-go (the same JSON
// bytes with a pass-through codec).
func BenchmarkNATSRPC(b *testing.B) {
	ns := startNATS(b)
	req := sumReq{A: 20, B: 22}
	ctx := context.Background()

	b.Run("natsrpc", func(b *testing.B) {
		srv := natsrpc.NewServer("bench")
		natsrpc.Handle(srv, "Sum", sum)
		serve(b, srv, connect(b, ns.ClientURL()))
		call := natsrpc.Call[sumReq, sumResp](natsrpc.NewClient(connect(b, ns.ClientURL()), "bench"), "Sum")
		measure(b, func() error {
			got, err := call(ctx, req)
			if err == nil && got.V != 42 {
				err = fmt.Errorf("got %d", got.V)
			}
			return err
		})
	})

	b.Run("nats.go", func(b *testing.B) {
		snc := connect(b, ns.ClientURL())
		sub, err := snc.QueueSubscribe("bare.bench.Sum", "bench", func(m *nats.Msg) {
			out, err := sumBytes(m.Data)
			if err != nil {
				out = []byte(`{"error":"bad request"}`)
			}
			_ = m.Respond(out)
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := snc.Flush(); err != nil {
			b.Fatal(err)
		}
		nc := connect(b, ns.ClientURL())
		measure(b, func() error {
			in, err := json.Marshal(req)
			if err != nil {
				return err
			}
			m, err := nc.RequestWithContext(ctx, "bare.bench.Sum", in)
			if err != nil {
				return err
			}
			var out sumResp
			if err := json.Unmarshal(m.Data, &out); err != nil || out.V != 42 {
				return fmt.Errorf("got %q: %v", m.Data, err)
			}
			return nil
		})
	})

	b.Run("grpc-go", func(b *testing.B) {
		desc := grpcgo.ServiceDesc{
			ServiceName: "bench.Bench",
			HandlerType: (*any)(nil),
			Methods: []grpcgo.MethodDesc{{
				MethodName: "Sum",
				Handler: func(_ any, _ context.Context, dec func(any) error, _ grpcgo.UnaryServerInterceptor) (any, error) {
					var in []byte
					if err := dec(&in); err != nil {
						return nil, err
					}
					out, err := sumBytes(in)
					return &out, err
				},
			}},
		}
		g := grpcgo.NewServer(grpcgo.ForceServerCodec(rawCodec{}))
		g.RegisterService(&desc, struct{}{})
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = g.Serve(lis) }()
		b.Cleanup(g.Stop)
		cc, err := grpcgo.NewClient(lis.Addr().String(), grpcgo.WithTransportCredentials(insecure.NewCredentials()),
			grpcgo.WithDefaultCallOptions(grpcgo.ForceCodec(rawCodec{})))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cc.Close() })
		measure(b, func() error {
			in, err := json.Marshal(req)
			if err != nil {
				return err
			}
			var out []byte
			if err := cc.Invoke(ctx, "/bench.Bench/Sum", &in, &out); err != nil {
				return err
			}
			var r sumResp
			if err := json.Unmarshal(out, &r); err != nil || r.V != 42 {
				return fmt.Errorf("got %q: %v", out, err)
			}
			return nil
		})
	})
}
