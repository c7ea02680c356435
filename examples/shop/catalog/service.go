// Package catalog is the shop's product catalogue: products, prices and stock, and stock
// reservations for orders. It owns its store; nobody else reads its tables. When a
// reservation leaves a product with little stock, it publishes StockLow through its outbox.
package catalog

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// Migrations hold the catalog's schema and seed data.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Catalog keeps products and their stock, and reserves stock for orders.
type Catalog interface {
	// ListProducts returns every product with its price and stock.
	//svckit:http GET /products
	ListProducts(ctx context.Context) ([]Product, error)
	// GetProduct returns one product.
	//svckit:http GET /products/{id}
	GetProduct(ctx context.Context, id string) (Product, error)
	// Reserve takes stock for an order. Calling it again for the same order returns the
	// first reservation and takes nothing more.
	Reserve(ctx context.Context, orderID string, items []Item) (Reservation, error)
	// Release returns an order's reserved stock. It is idempotent, and a release that
	// arrives before its reservation makes that reservation fail.
	Release(ctx context.Context, orderID string) error
}

// Product is something the shop sells.
type Product struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	Stock      int64  `json:"stock"`
}

// Item is a quantity of one product.
type Item struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// Reservation is the stock taken for an order.
type Reservation struct {
	OrderID    string `json:"orderId"`
	TotalCents int64  `json:"totalCents"`
	Items      []Item `json:"items"`
}

// StockLow is the event published when a reservation leaves a product below the
// low-stock threshold.
type StockLow struct {
	ProductID string `json:"productId"`
	Stock     int64  `json:"stock"`
}

// SubjectStockLow is the subject of StockLow events.
const SubjectStockLow = "shop.catalog.stock_low"

// Service is the catalog's implementation.
type Service struct {
	st       *store.Store
	ob       *outbox.Outbox
	lowStock int64
}

// New returns the catalog over its store and outbox; lowStock is the threshold below
// which a reservation publishes StockLow.
func New(st *store.Store, ob *outbox.Outbox, lowStock int64) *Service {
	return &Service{st: st, ob: ob, lowStock: lowStock}
}

var _ Catalog = (*Service)(nil)

// ListProducts returns every product.
func (s *Service) ListProducts(ctx context.Context) ([]Product, error) {
	rows, err := s.st.ReadDB().QueryContext(ctx, `SELECT id, name, price_cents, stock FROM products ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("catalog: list products: %w", err)
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		var p Product
		if err := rows.Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock); err != nil {
			return nil, fmt.Errorf("catalog: list products: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// GetProduct returns one product.
func (s *Service) GetProduct(ctx context.Context, id string) (Product, error) {
	p := Product{ID: id}
	err := s.st.ReadDB().QueryRowContext(ctx, s.st.Rebind(`SELECT name, price_cents, stock FROM products WHERE id = ?`), id).
		Scan(&p.Name, &p.PriceCents, &p.Stock)
	if errors.Is(err, sql.ErrNoRows) {
		return Product{}, svcerr.Errorf(svcerr.NotFound, "product %q does not exist", id)
	}
	if err != nil {
		return Product{}, fmt.Errorf("catalog: get product %s: %w", id, err)
	}
	return p, nil
}

// Reserve takes stock for an order, once.
func (s *Service) Reserve(ctx context.Context, orderID string, items []Item) (Reservation, error) {
	if orderID == "" {
		return Reservation{}, svcerr.Invalid("orderId", "is required")
	}
	if len(items) == 0 {
		return Reservation{}, svcerr.Invalid("items", "must not be empty")
	}
	merged := map[string]int64{}
	for i, it := range items {
		if it.Quantity <= 0 || it.Quantity > 1000 {
			return Reservation{}, svcerr.Invalid(fmt.Sprintf("items[%d].quantity", i), "must be between 1 and 1000")
		}
		merged[it.ProductID] += it.Quantity
	}
	ids := make([]string, 0, len(merged))
	for id := range merged {
		ids = append(ids, id)
	}
	sort.Strings(ids) // a fixed order of row updates
	// The first call for an order, the usual one, takes the stock and records the
	// reservation without reading first: the reservation's INSERT does nothing when the
	// order has one already (a call made again, or a release that came first), and the
	// transaction is then rolled back and the recorded reservation answered instead.
	var res Reservation
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		// Stock first, each product in one statement (taken only if enough is left; the
		// price and what is left come back), then the reservation with its total: two
		// statements per order fewer than inserting it first and updating its total.
		res = Reservation{OrderID: orderID}
		var events []*pubsub.Message
		for _, id := range ids {
			q := merged[id]
			var price, left int64
			err := tx.QueryRowContext(ctx, s.st.Rebind(`UPDATE products SET stock = stock - ? WHERE id = ? AND stock >= ? RETURNING price_cents, stock`), q, id, q).
				Scan(&price, &left)
			if errors.Is(err, sql.ErrNoRows) {
				// A call made again after the stock ran out answers the reservation.
				var one int
				switch err := tx.QueryRowContext(ctx, s.st.Rebind(`SELECT 1 FROM reservations WHERE order_id = ?`), orderID).Scan(&one); {
				case err == nil:
					return errReservedBefore
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
				return s.notReserved(ctx, tx, id, q)
			}
			if err != nil {
				return err
			}
			res.TotalCents += price * q
			res.Items = append(res.Items, Item{ProductID: id, Quantity: q})
			if stock := left + q; left < s.lowStock && stock >= s.lowStock {
				data, _ := json.Marshal(StockLow{ProductID: id, Stock: left})
				events = append(events, &pubsub.Message{Subject: SubjectStockLow, Key: id, Type: "StockLow", Data: data})
			}
		}
		r, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO reservations (order_id, status, total_cents, created_at) VALUES (?, 'reserved', ?, ?) ON CONFLICT (order_id) DO NOTHING`),
			orderID, res.TotalCents, time.Now().UnixMilli())
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return errReservedBefore // rolls back the stock taken above
		}
		for _, it := range res.Items {
			if _, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO reservation_items (order_id, product_id, quantity) VALUES (?, ?, ?)`), orderID, it.ProductID, it.Quantity); err != nil {
				return err
			}
		}
		if len(events) > 0 {
			return s.ob.Add(ctx, tx, events...)
		}
		return nil
	})
	if errors.Is(err, errReservedBefore) {
		err = s.st.InTx(ctx, func(tx *sql.Tx) error {
			res = Reservation{OrderID: orderID}
			return s.recorded(ctx, tx, &res)
		})
	}
	if err != nil {
		return Reservation{}, err
	}
	return res, nil
}

// errReservedBefore says that the order has a reservation (or a release) already.
var errReservedBefore = errors.New("catalog: order reserved or released before")

// recorded reads the reservation of res.OrderID into res: the answer to a Reserve made
// again. A released order's is refused.
func (s *Service) recorded(ctx context.Context, tx *sql.Tx, res *Reservation) error {
	var status string
	err := tx.QueryRowContext(ctx, s.st.Rebind(`SELECT status, total_cents FROM reservations WHERE order_id = ?`), res.OrderID).
		Scan(&status, &res.TotalCents)
	if err != nil {
		return fmt.Errorf("catalog: reservation of %s: %w", res.OrderID, err)
	}
	if status != "reserved" {
		return svcerr.Errorf(svcerr.FailedPrecondition, "order %s was released already", res.OrderID)
	}
	return s.loadItems(ctx, tx, res)
}

// notReserved returns why q of product id could not be taken: the product does not
// exist, or too little of it is left.
func (s *Service) notReserved(ctx context.Context, tx *sql.Tx, id string, q int64) error {
	var stock int64
	err := tx.QueryRowContext(ctx, s.st.Rebind(`SELECT stock FROM products WHERE id = ?`), id).Scan(&stock)
	if errors.Is(err, sql.ErrNoRows) {
		return svcerr.Errorf(svcerr.NotFound, "product %q does not exist", id)
	}
	if err != nil {
		return err
	}
	return svcerr.Errorf(svcerr.FailedPrecondition, "not enough stock of %s: %d left, %d wanted", id, stock, q)
}

func (s *Service) loadItems(ctx context.Context, tx *sql.Tx, res *Reservation) error {
	rows, err := tx.QueryContext(ctx, s.st.Rebind(`SELECT product_id, quantity FROM reservation_items WHERE order_id = ? ORDER BY product_id`), res.OrderID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.ProductID, &it.Quantity); err != nil {
			return err
		}
		res.Items = append(res.Items, it)
	}
	return rows.Err()
}

// Release returns an order's stock, once.
func (s *Service) Release(ctx context.Context, orderID string) error {
	if orderID == "" {
		return svcerr.Invalid("orderId", "is required")
	}
	return s.st.InTx(ctx, func(tx *sql.Tx) error {
		var status string
		err := tx.QueryRowContext(ctx, s.st.Rebind(`SELECT status FROM reservations WHERE order_id = ?`), orderID).Scan(&status)
		if errors.Is(err, sql.ErrNoRows) {
			// Remember the release so that a reservation arriving late is refused.
			_, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO reservations (order_id, status, total_cents, created_at) VALUES (?, 'released', 0, ?)`),
				orderID, time.Now().UnixMilli())
			return err
		}
		if err != nil || status == "released" {
			return err
		}
		res := Reservation{OrderID: orderID}
		if err := s.loadItems(ctx, tx, &res); err != nil {
			return err
		}
		for _, it := range res.Items {
			if _, err := tx.ExecContext(ctx, s.st.Rebind(`UPDATE products SET stock = stock + ? WHERE id = ?`), it.Quantity, it.ProductID); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, s.st.Rebind(`UPDATE reservations SET status = 'released' WHERE order_id = ?`), orderID)
		return err
	})
}
