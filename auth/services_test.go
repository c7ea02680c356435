package auth_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/svcerr"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
	"github.com/svckit/svckit/transport/meta"
)

func TestServicePolicies(t *testing.T) {
	v := newValidator(t)
	tok := sign(t, jwt.SigningMethodRS256, testRSAKey(t), "rsa1", claims("admin"))
	peer := func(svc string) mtls.Identity {
		id, err := mtls.NewIdentity("svckit.local", svc)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for _, tc := range []struct {
		name        string
		policy      auth.Policy
		peer        string // "" for a call without a client certificate
		token       string
		want        svcerr.Kind
		wantSubject string
	}{
		{"listed service", auth.Services("orders", "gateway"), "gateway", "", svcerr.Unknown, "spiffe://svckit.local/svc/gateway"},
		{"other service", auth.Services("orders", "gateway"), "catalog", "", svcerr.PermissionDenied, ""},
		{"no certificate", auth.Services("orders"), "", tok, svcerr.PermissionDenied, ""},
		{"no services listed", auth.Services(), "orders", "", svcerr.PermissionDenied, ""},
		{"role via the gateway", auth.Require("admin").AndServices("gateway"), "gateway", tok, svcerr.Unknown, "alice"},
		{"role, not via the gateway", auth.Require("admin").AndServices("gateway"), "catalog", tok, svcerr.PermissionDenied, ""},
		{"via the gateway without a token", auth.Require("admin").AndServices("gateway"), "gateway", "", svcerr.Unauthenticated, ""},
		{"public and services", auth.Public().AndServices("gateway"), "orders", "", svcerr.PermissionDenied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := endpoint.Info{Service: "catalog", Method: "Reserve", Transport: "grpc"}
			var subject string
			e := endpoint.Wrap(info, func(ctx context.Context, _ int) (int, error) {
				subject = meta.Subject(ctx)
				return 1, nil
			}, auth.Middleware(v, auth.Policies{"Reserve": tc.policy}))
			ctx := context.Background()
			if tc.peer != "" {
				ctx = mtls.WithPeer(ctx, peer(tc.peer))
			}
			if tc.token != "" {
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+tc.token))
			}
			_, err := e(ctx, 0)
			if got := svcerr.KindOf(err); got != tc.want {
				t.Fatalf("kind %v (%v), want %v", got, err, tc.want)
			}
			if subject != tc.wantSubject {
				t.Fatalf("meta.Subject = %q, want %q", subject, tc.wantSubject)
			}
		})
	}
}

func TestServicePoliciesWithoutValidator(t *testing.T) {
	info := endpoint.Info{Service: "catalog", Method: "Reserve", Transport: "grpc"}
	policies := auth.Policies{"Reserve": auth.Services("orders"), "Health": auth.Public()}
	// An endpoint missing from the policies is denied, validator or not.
	other := endpoint.Wrap(endpoint.Info{Service: "catalog", Method: "Drop"},
		func(context.Context, int) (int, error) { return 1, nil }, auth.Middleware(nil, policies))
	if _, err := other(context.Background(), 0); svcerr.KindOf(err) != svcerr.PermissionDenied {
		t.Fatalf("endpoint without a policy: %v", err)
	}
	endpoint.Wrap(info, func(context.Context, int) (int, error) { return 1, nil }, auth.Middleware(nil, policies))
	defer func() {
		if recover() == nil {
			t.Fatal("a token policy without a Validator did not panic")
		}
	}()
	endpoint.Wrap(info, func(context.Context, int) (int, error) { return 1, nil },
		auth.Middleware(nil, auth.Policies{"Reserve": auth.Authenticated()}))
}

// TestServicePoliciesOverMTLS serves an endpoint whose policy admits the gateway only,
// over real mTLS on gRPC and HTTP, and calls it as the gateway and as the catalog.
func TestServicePoliciesOverMTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := mtls.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	source := func(svc string) *mtls.Source {
		if _, err := ca.IssueFiles(dir, svc); err != nil {
			t.Fatal(err)
		}
		src, err := mtls.NewSource(filepath.Join(dir, mtls.CertFile(svc)), filepath.Join(dir, mtls.KeyFile(svc)),
			filepath.Join(dir, mtls.CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	orders, gateway, catalog := source("orders"), source("gateway"), source("catalog")
	mw := auth.Middleware(nil, auth.Policies{"Sum": auth.Services("gateway")})
	sum := func(ctx context.Context, r req) (resp, error) { return resp{V: r.A + r.B}, nil }

	// gRPC
	gs := sgrpc.NewServer(grpcService, sgrpc.WithMiddleware(mw))
	sgrpc.Unary(gs, "Sum", sum, decReq, encResp)
	g := sgrpc.NewGRPCServer(nil, sgrpc.ServerCredentials(orders.ServerTLS()))
	gs.Register(g)
	gln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(gln) }()
	defer g.Stop()
	// HTTP
	hs := shttp.NewServer("orders", shttp.WithMiddleware(mw))
	shttp.Handle(hs, "POST /sum", "Sum", sum)
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hs, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(tls.NewListener(hln, orders.ServerTLS())) }()
	defer srv.Close()

	for _, tc := range []struct {
		client *mtls.Source
		want   svcerr.Kind
	}{{gateway, svcerr.Unknown}, {catalog, svcerr.PermissionDenied}} {
		name := tc.client.Identity().Service
		t.Run("grpc/"+name, func(t *testing.T) {
			cc, err := grpcgo.NewClient("passthrough:///"+gln.Addr().String(), sgrpc.DialCredentials(tc.client.ClientTLS("orders")))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			call := sgrpc.UnaryCall(sgrpc.NewClient(cc, grpcService), "Sum", encReq, decResp)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := call(ctx, req{A: 2, B: 3})
			if got := svcerr.KindOf(err); got != tc.want || (err == nil && out.V != 5) {
				t.Fatalf("%+v, kind %v (%v), want %v", out, got, err, tc.want)
			}
		})
		t.Run("http/"+name, func(t *testing.T) {
			c, err := shttp.NewClient("https://"+hln.Addr().String(), "orders", shttp.WithTLSConfig(tc.client.ClientTLS("orders")))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := shttp.Call[req, resp](c, "POST /sum", "Sum")(ctx, req{A: 2, B: 3})
			if got := svcerr.KindOf(err); got != tc.want || (err == nil && out.V != 5) {
				t.Fatalf("%+v, kind %v (%v), want %v", out, got, err, tc.want)
			}
		})
	}
}
