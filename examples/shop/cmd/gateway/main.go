// Command gateway runs the shop's public HTTP API: JWT authentication, per-caller rate
// limits, and routing to orders and catalog over gRPC.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/gateway"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/resilience"
)

type config struct {
	svckit.Config
	svckit.NATSConfig         // the natskv registry, when a peer's target is natskv:
	OrdersAddrs       string  `flag:"orders-addrs" env:"ORDERS_GRPC_ADDRS" required:"true" help:"orders gRPC addresses, comma-separated, or natskv: or dns:///… (see svckit App.Dial)"`
	CatalogAddrs      string  `flag:"catalog-addrs" env:"CATALOG_GRPC_ADDRS" required:"true" help:"catalog gRPC addresses, comma-separated, or natskv: or dns:///… (see svckit App.Dial)"`
	JWKSURL           string  `flag:"jwks-url" env:"JWKS_URL" required:"true" help:"where the token signing keys are published (JWKS)"`
	Issuer            string  `flag:"jwt-issuer" env:"JWT_ISSUER" default:"svckit-dev" help:"required token issuer"`
	Audience          string  `flag:"jwt-audience" env:"JWT_AUDIENCE" default:"shop" help:"required token audience"`
	RatePerCall       float64 `flag:"rate" default:"200" help:"calls per second allowed per caller"`
	MaxInFlight       int     `flag:"max-in-flight" default:"512" help:"requests served at once before shedding load with 503"`
}

func main() {
	cfg := &config{}
	svckit.Main("gateway", cfg, func(ctx context.Context, app *svckit.App) error {
		ordCC, err := app.Dial(ctx, "orders", cfg.OrdersAddrs)
		if err != nil {
			return err
		}
		catCC, err := app.Dial(ctx, "catalog", cfg.CatalogAddrs)
		if err != nil {
			return err
		}
		ord := orders.NewOrdersClient(orders.NewOrdersGRPCClient(ordCC, app.GRPCClientOptions()...))
		cat := catalog.NewCatalogClient(catalog.NewCatalogGRPCClient(catCC, app.GRPCClientOptions()...))
		v, err := auth.NewValidator(auth.WithJWKS(cfg.JWKSURL), auth.WithIssuer(cfg.Issuer), auth.WithAudience(cfg.Audience),
			auth.WithLeeway(5*time.Second))
		if err != nil {
			return fmt.Errorf("jwt: %w", err)
		}
		app.Use(
			resilience.ConcurrencyLimit(cfg.MaxInFlight, 0),
			auth.Middleware(v, auth.Policies{
				"PlaceOrder":   auth.Authenticated(),
				"GetOrder":     auth.Authenticated(),
				"ListProducts": auth.Public(),
			}),
			resilience.RateLimit(resilience.RateLimitConfig{Rate: cfg.RatePerCall}),
		)
		return gateway.ServeGateway(app, gateway.New(ord, cat))
	})
}
