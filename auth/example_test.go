package auth_test

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/svcerr"
)

func ExampleNewValidator() {
	// In production: auth.WithJWKS("https://issuer.example/.well-known/jwks.json"). Here a
	// development issuer stands in for the identity provider.
	dev, _ := auth.NewDevIssuer("https://issuer.example", "orders")
	v, err := auth.NewValidator(dev.Options()...) // key (EdDSA), issuer, audience
	if err != nil {
		panic(err)
	}
	token, _ := dev.Token("alice", time.Hour, "admin")
	c, err := v.Validate(context.Background(), token)
	fmt.Println(c.Subject, c.Roles, err)

	_, err = v.Validate(context.Background(), "not-a-token")
	fmt.Println(svcerr.KindOf(err), svcerr.From(err).Message) // what callers see
	fmt.Println(err)                                          // what the logs see
	// Output:
	// alice [admin] <nil>
	// unauthenticated invalid token: malformed token
	// unauthenticated: invalid token: malformed token: token is malformed: token contains an invalid number of segments
}

func ExampleMiddleware() {
	dev, _ := auth.NewDevIssuer("dev", "orders")
	v, _ := auth.NewValidator(dev.Options()...)

	// Policies sit next to the endpoints. Once any is set, endpoints without one are denied.
	policies := auth.Policies{
		"Cancel": auth.Require("admin", "support"), // any one of the roles
		"Get":    auth.Authenticated(),
		"Health": auth.Public(),
	}
	cancel := func(ctx context.Context, id string) (string, error) {
		return "canceled " + id + " by " + auth.ClaimsFrom(ctx).Subject, nil
	}
	e := endpoint.Wrap(endpoint.Info{Service: "orders", Method: "Cancel", Transport: "grpc"}, cancel,
		auth.Middleware(v, policies))

	// Over gRPC the token is in the "authorization" metadata; over HTTP in the header.
	call := func(token string) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
		out, err := e(ctx, "o-17")
		fmt.Println(out, svcerr.KindOf(err))
	}
	admin, _ := dev.Token("alice", time.Hour, "admin")
	viewer, _ := dev.Token("bob", time.Hour, "viewer")
	call(admin)
	call(viewer)
	call("")
	// Output:
	// canceled o-17 by alice unknown
	//  permission_denied
	//  unauthenticated
}

func ExampleServices() {
	// Under mTLS, endpoints that only other services call admit them by the identity in
	// their client certificates: no token needed. The validator may then be nil.
	policies := auth.Policies{
		"Reserve": auth.Services("orders"),
		"Release": auth.Services("orders", "payments"),
	}
	reserve := func(ctx context.Context, sku string) (string, error) {
		peer, _ := mtls.PeerFromContext(ctx)
		return "reserved " + sku + " for " + peer.Service, nil
	}
	e := endpoint.Wrap(endpoint.Info{Service: "catalog", Method: "Reserve", Transport: "grpc"}, reserve,
		auth.Middleware(nil, policies))

	// Served over mTLS the identity comes from the certificate; here it is set by hand.
	call := func(svc string) {
		id, _ := mtls.NewIdentity("svckit.local", svc)
		out, err := e(mtls.WithPeer(context.Background(), id), "sku-kettle")
		fmt.Println(out, svcerr.KindOf(err))
	}
	call("orders")
	call("gateway")
	// Output:
	// reserved sku-kettle for orders unknown
	//  permission_denied
}
