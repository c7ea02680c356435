package loadgen_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/internal/loadgen"
	sgrpc "github.com/svckit/svckit/transport/grpc"
)

func TestFindOperation(t *testing.T) {
	doc, err := loadgen.ReadOpenAPI(context.Background(), http.DefaultClient, "../../examples/shop/gateway/gateway.openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, op, method, path, params, err string
		body                                bool
	}{
		{name: "exact", op: "GatewayPlaceOrder", method: "POST", path: "/orders", body: true},
		{name: "suffix", op: "PlaceOrder", method: "POST", path: "/orders", body: true},
		{name: "any case", op: "placeorder", method: "POST", path: "/orders", body: true},
		{name: "path parameter", op: "GetOrder", method: "GET", path: "/orders/{id}", params: "id"},
		{name: "ambiguous", op: "Order", err: `"Order" is ambiguous: GatewayGetOrder, `},
		{name: "missing", op: "Refund", err: `no operation "Refund"; the document has: GatewayGetOrder, `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, err := loadgen.FindOperation(doc, tc.op)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if op.Method != tc.method || op.Path != tc.path || strings.Join(op.PathParams, ",") != tc.params || op.Body != tc.body {
				t.Fatalf("%+v", op)
			}
		})
	}
	for _, bad := range []string{`{`, `{"swagger":"2.0","paths":{}}`} {
		if _, err := loadgen.FindOperation([]byte(bad), "X"); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	// Over HTTP, and bounded.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write(make([]byte, loadgen.MaxOpenAPIBytes+1))
			return
		}
		w.Write(doc)
	}))
	defer srv.Close()
	if got, err := loadgen.ReadOpenAPI(context.Background(), srv.Client(), srv.URL+"/openapi.json"); err != nil || len(got) != len(doc) {
		t.Fatalf("over HTTP: %d bytes, %v", len(got), err)
	}
	if _, err := loadgen.ReadOpenAPI(context.Background(), srv.Client(), srv.URL+"/big"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a huge document: %v", err)
	}
	if _, err := loadgen.ReadOpenAPI(context.Background(), srv.Client(), "no/such/file.json"); err == nil {
		t.Fatal("a missing file: no error")
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.1.2.3", true},
		{"[::1]:443", true},
		{"::1", true},
		{"localhost:8080", true},
		{":8080", true},
		{"10.0.0.1:80", false},
		{"192.168.1.1", false},
		{"[2001:db8::1]:80", false},
		{"0.0.0.0:80", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := loadgen.CheckLoopback(context.Background(), tc.addr)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckLoopback(%q) = %v, want ok %v", tc.addr, err, tc.ok)
			}
		})
	}
}

// grpcServer serves the standard health and reflection services, as every svckit service
// does, and returns a client connection. Health's Check is a unary method with errors of
// its own (NotFound for an unknown service) and Watch a streaming one.
func grpcServer(t *testing.T, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(opts...)
	sgrpc.Standard(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestResolveGRPC(t *testing.T) {
	cc := grpcServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct{ name, path, err string }{
		{name: "grpc.health.v1.Health/Check", path: "/grpc.health.v1.Health/Check"},
		{name: "Health/Check", path: "/grpc.health.v1.Health/Check"},
		{name: "grpc.health.v1.Health.Check", path: "/grpc.health.v1.Health/Check"},
		{name: "check", path: "/grpc.health.v1.Health/Check"},
		{name: "List", path: "/grpc.health.v1.Health/List"},
		{name: "Watch", err: "streams; svckit load calls unary methods only"},
		{name: "Health/Nope", err: `not found in grpc.health.v1.Health`},
		{name: "Sub/Sum", err: `no service "Sub"; the server has: grpc.health.v1.Health, grpc.reflection.v1.ServerReflection`},
		{name: "Health/", err: "no method name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := loadgen.ResolveGRPC(ctx, cc, tc.name)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Path != tc.path {
				t.Fatalf("path %s, want %s", m.Path, tc.path)
			}
		})
	}
}

// TestGRPCCall calls health's Check by reflection with a templated JSON body: every third
// call asks for an unknown service, which Check answers with NotFound. The metadata
// arrives.
func TestGRPCCall(t *testing.T) {
	var sawToken = make(chan string, 1)
	cc := grpcServer(t, grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		select {
		case sawToken <- strings.Join(md.Get("authorization"), ","):
		default:
		}
		return h(ctx, req)
	}))
	m, err := loadgen.ResolveGRPC(context.Background(), cc, "Health/Check")
	if err != nil {
		t.Fatal(err)
	}
	body, err := loadgen.ParseTemplate("body", `{"service":"{{if eq (mod .N 3) 0}}nope-{{.N}}{{end}}"}`)
	if err != nil {
		t.Fatal(err)
	}
	call, err := loadgen.GRPCCall(cc, m, body, metadata.Pairs("authorization", "Bearer tok"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Options{Concurrency: 4, Duration: time.Minute, Requests: 300,
		Call: call, OK: func(s int, _ []byte) bool { return s == int(codes.OK) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 300 || res.Failures != 100 || res.FailedByStatus[int(codes.NotFound)] != 100 ||
		!strings.Contains(res.LastError, "NotFound") {
		t.Fatalf("%+v", res)
	}
	if tok := <-sawToken; tok != "Bearer tok" {
		t.Fatalf("authorization metadata %q", tok)
	}

	// A body that is not the method's request is refused before the run.
	for _, bad := range []string{`{"service":`, `{"nope":1}`, `{"service":7}`} {
		b, _ := loadgen.ParseTemplate("body", bad)
		if _, err := loadgen.GRPCCall(cc, m, b, nil, time.Second); err == nil || !strings.Contains(err.Error(), "not a grpc.health.v1.HealthCheckRequest") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
