// Command benchserver serves the same JSON sum endpoint (and the same gRPC Sum method)
// through bare net/http, bare grpc-go and svckit's full production stack, so that
// bench/run.sh can load them side by side. It also runs an OTLP sink that receives the
// svckit servers' spans.
//
//	benchserver -mode bare-http   -addr 127.0.0.1:18080
//	benchserver -mode svckit-http -addr 127.0.0.1:18080 -admin 127.0.0.1:19090
//	benchserver -mode bare-grpc   -addr 127.0.0.1:18081
//	benchserver -mode svckit-grpc -addr 127.0.0.1:18081 -admin 127.0.0.1:19090
//	benchserver -mode otlp-sink   -addr 127.0.0.1:4318
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/examples/addsvc/addsvc"
	"github.com/svckit/svckit/examples/addsvc/pb"
	"github.com/svckit/svckit/gctune"
)

func main() {
	mode := flag.String("mode", "", "bare-http | svckit-http | bare-grpc | svckit-grpc | otlp-sink")
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	admin := flag.String("admin", "127.0.0.1:19090", "admin address (svckit modes), or /debug/pprof only (bare modes)")
	flag.Parse()
	switch *mode {
	case "bare-http":
		go serveProfiles(*admin)
		defer sameGC().Stop()
		bareHTTP(*addr)
	case "bare-grpc":
		go serveProfiles(*admin)
		defer sameGC().Stop()
		bareGRPC(*addr)
	case "svckit-http", "svckit-grpc":
		svckitServer(*mode, *addr, *admin)
	case "otlp-sink":
		otlpSink(*addr)
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
}

// sameGC gives a bare server the garbage collector's settings that svckit.Main gives the
// svckit servers (gctune.StartFromEnv: the heap floor of GC_HEAP_FLOOR_MIB, or none when
// GOGC is set), so that the two compare like for like. `GC_HEAP_FLOOR_MIB=0 bench/run.sh`
// compares both at Go's own settings.
func sameGC() *gctune.Tuner {
	t, err := gctune.StartFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	return t
}

// serveProfiles serves /debug/pprof on addr for the bare servers, so that their CPU
// profiles can be compared with svckit's (whose admin listener serves the same).
func serveProfiles(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	if err := http.ListenAndServe(addr, mux); err != nil {
		log.Printf("pprof listener: %v", err)
	}
}

type sumRequest struct {
	A int64 `json:"a"`
	B int64 `json:"b"`
}

type sumResponse struct {
	V int64 `json:"v"`
}

// bareHTTP is what a careful hand-written net/http service does: method routing, a JSON
// body decoded and checked, a JSON response.
func bareHTTP(addr string) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sum", func(w http.ResponseWriter, r *http.Request) {
		var req sumRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sumResponse{V: req.A + req.B})
	})
	log.Fatal(http.ListenAndServe(addr, mux))
}

type bareAdd struct{}

func (bareAdd) Sum(_ context.Context, in *pb.SumRequest) (*pb.SumResponse, error) {
	return &pb.SumResponse{V: in.A + in.B}, nil
}

// bareGRPC registers the same ServiceDesc protoc-gen-go-grpc would generate.
func bareGRPC(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "addsvc.Add",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Sum",
			Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				in := new(pb.SumRequest)
				if err := dec(in); err != nil {
					return nil, err
				}
				return bareAdd{}.Sum(ctx, in)
			},
		}},
		Metadata: "addsvc.proto",
	}, bareAdd{})
	log.Fatal(s.Serve(ln))
}

// svckitServer is addsvc on svckit with its default production stack: request ids, trace
// context, tracing at 100% sampling exported in batches over OTLP, JSON access log on
// stdout, RED metrics, timeout and panic recovery. Sampling and the exporter come from
// the OTEL_* environment that bench/run.sh sets.
func svckitServer(mode, addr, admin string) {
	httpAddr, grpcAddr := "", ""
	if mode == "svckit-http" {
		httpAddr = addr
	} else {
		grpcAddr = addr
	}
	args := []string{"-admin-addr", admin, "-pprof", "-http-addr", httpAddr, "-grpc-addr", grpcAddr}
	os.Args = append(os.Args[:1], args...)
	svckit.Main("addsvc", &svckit.Config{}, func(_ context.Context, app *svckit.App) error {
		e := addsvc.MakeEndpoints(addsvc.New())
		addsvc.RegisterHTTP(app.HTTP(), e)
		addsvc.RegisterGRPC(app.GRPC(addsvc.GRPCService), e)
		return nil
	})
}

// otlpSink accepts OTLP/HTTP exports and counts their bytes, so the svckit servers pay the
// real cost of exporting spans.
func otlpSink(addr string) {
	var n, bytes atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		k, _ := io.Copy(io.Discard, r.Body)
		n.Add(1)
		bytes.Add(k)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		fmt.Fprintf(os.Stderr, "otlp-sink: %d exports, %d bytes\n", n.Load(), bytes.Load())
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
