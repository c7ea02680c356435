package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/gateway"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/internal/testnet"
	shttp "github.com/svckit/svckit/transport/http"
)

// asAda makes every call the authenticated customer "ada", in place of token validation.
func asAda(_ endpoint.Info, next endpoint.Handler) endpoint.Handler {
	ada := &auth.Claims{}
	ada.Subject = "ada"
	return func(ctx context.Context, req any) (any, error) {
		return next(auth.WithClaims(ctx, ada), req)
	}
}

// TestBackendsDownLeakNothing serves the gateway over orders and catalog that cannot be
// reached: every public answer is a 503 problem saying the service is unavailable, with
// the request id, and nothing about addresses or gRPC transport.
func TestBackendsDownLeakNothing(t *testing.T) {
	dead := testnet.Reserve(t).Addr()
	cc, err := grpcgo.NewClient(dead, grpcgo.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	gw := gateway.New(orders.NewOrdersClient(orders.NewOrdersGRPCClient(cc)), catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(cc)))
	srv := shttp.NewServer("gateway", shttp.WithMiddleware(asAda))
	gateway.RegisterGatewayHTTP(srv, gateway.MakeGatewayEndpoints(gw))
	hs := httptest.NewServer(srv)
	defer hs.Close()

	tests := []struct{ method, path, body string }{
		{"GET", "/products", ""},
		{"GET", "/orders/ord_1", ""},
		{"POST", "/orders", `{"items":[{"productId":"sku-kettle","quantity":1}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, hs.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p shttp.Problem
			_ = json.Unmarshal(body, &p)
			if resp.StatusCode != http.StatusServiceUnavailable || p.Detail != "service unavailable" || p.RequestID == "" {
				t.Errorf("%d %s, want 503 \"service unavailable\" with a request id", resp.StatusCode, body)
			}
			for _, f := range []string{"127.0.0.1", dead, "dial tcp", "connection refused", "transport", "rpc error", "desc ="} {
				if strings.Contains(string(body), f) {
					t.Errorf("the response carries %q: %s", f, body)
				}
			}
		})
	}
}
