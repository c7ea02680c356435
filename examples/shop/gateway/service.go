// Package gateway is the shop's public HTTP API. It authenticates callers (JWT), limits
// their rate, and routes each call to the service that owns it over gRPC. It holds no
// business logic and no data of its own.
package gateway

import (
	"context"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/svcerr"
	"github.com/svckit/svckit/transport/meta"
)

// Gateway is the shop's public API.
//
//svckit:grpc shop.Gateway
//svckit:auth bearer
type Gateway interface {
	// PlaceOrder places an order for the caller, the subject of the bearer token, and
	// returns it confirmed or cancelled — or, when the order's saga outlasts the
	// request's deadline (a service it needs is restarting), pending: 200 with status
	// "pending" and the order's id, to poll with GET /orders/{id} until it is confirmed
	// or cancelled. A request with an Idempotency-Key header places one order per key:
	// sent again with the same key (its answer was lost), it answers with that order.
	//svckit:http POST /orders
	PlaceOrder(ctx context.Context, items []Item) (Order, error)
	// GetOrder returns one of the caller's orders.
	//svckit:http GET /orders/{id}
	GetOrder(ctx context.Context, id string) (Order, error)
	// ListProducts returns the catalogue.
	//svckit:http GET /products
	//svckit:auth public
	ListProducts(ctx context.Context) ([]Product, error)
}

// Item is a quantity of one product.
type Item struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// Order is an order as the public API shows it.
type Order struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	TotalCents int64  `json:"totalCents"`
	Items      []Item `json:"items"`
	Reason     string `json:"reason,omitempty"`
}

// Product is a product as the public API shows it.
type Product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	InStock    bool   `json:"inStock"`
}

// Service implements Gateway over the orders and catalog services.
type Service struct {
	orders  orders.Orders
	catalog catalog.Catalog
}

// New returns the gateway over its backends.
func New(o orders.Orders, c catalog.Catalog) *Service { return &Service{orders: o, catalog: c} }

var _ Gateway = (*Service)(nil)

func caller(ctx context.Context) (string, error) {
	c := auth.ClaimsFrom(ctx)
	if c == nil || c.Subject == "" {
		return "", svcerr.New(svcerr.Unauthenticated, "a bearer token with a subject is required")
	}
	return c.Subject, nil
}

// PlaceOrder places an order for the caller. orders answers before the deadline this
// request carries to it (gRPC sends it along), with the order pending if its saga has
// not ended by then.
func (s *Service) PlaceOrder(ctx context.Context, items []Item) (Order, error) {
	customer, err := caller(ctx)
	if err != nil {
		return Order{}, err
	}
	in := make([]orders.Item, len(items))
	for i, it := range items {
		in[i] = orders.Item{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	// The order's id is chosen here, so that the call to orders can be made again (the
	// client chain retries it when orders was unreachable or restarted under it) and
	// places the order once. A client that sends an Idempotency-Key gets the same order
	// for the same key, and may send its request again too.
	id := orders.NewID()
	if key := meta.Header(ctx, "Idempotency-Key"); key != "" {
		if len(key) > 255 {
			return Order{}, svcerr.Invalid("Idempotency-Key", "must be at most 255 bytes")
		}
		id = orders.IDFor(customer, key)
	}
	o, err := s.orders.PlaceOrder(ctx, customer, in, id)
	if err != nil {
		return Order{}, err
	}
	return fromOrder(o), nil
}

// GetOrder returns one of the caller's orders; other customers' orders do not exist for
// the caller.
func (s *Service) GetOrder(ctx context.Context, id string) (Order, error) {
	customer, err := caller(ctx)
	if err != nil {
		return Order{}, err
	}
	o, err := s.orders.GetOrder(ctx, id)
	if err != nil {
		return Order{}, err
	}
	if o.Customer != customer {
		return Order{}, svcerr.Errorf(svcerr.NotFound, "order %q does not exist", id)
	}
	return fromOrder(o), nil
}

// ListProducts returns the catalogue.
func (s *Service) ListProducts(ctx context.Context) ([]Product, error) {
	ps, err := s.catalog.ListProducts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Product, len(ps))
	for i, p := range ps {
		out[i] = Product{ID: p.ID, Name: p.Name, PriceCents: p.PriceCents, InStock: p.Stock > 0}
	}
	return out, nil
}

func fromOrder(o orders.Order) Order {
	out := Order{ID: o.ID, Status: o.Status, TotalCents: o.TotalCents, Reason: o.Reason, Items: make([]Item, len(o.Items))}
	for i, it := range o.Items {
		out.Items[i] = Item{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	return out
}
