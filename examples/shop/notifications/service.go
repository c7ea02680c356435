// Package notifications tells customers what happened to their orders. It consumes the
// orders events (OrderPlaced, OrderConfirmed, OrderCancelled), keeps a notification log
// in its own store — once per event, however often the event is delivered — and a cron
// digest, run on one replica per tick, counts what was sent.
package notifications

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/svckit/svckit/examples/shop/orders"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// Migrations hold the notifications schema.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Notifications lists what customers were told.
type Notifications interface {
	// ListNotifications returns the notifications about an order, oldest first.
	//svckit:http GET /notifications/{orderID}
	ListNotifications(ctx context.Context, orderID string) ([]Notification, error)
}

// Notification is one message to a customer.
type Notification struct {
	OrderID  string `json:"orderId"`
	Customer string `json:"customer"`
	Kind     string `json:"kind"`
	Text     string `json:"text"`
}

// Service is the notifications implementation.
type Service struct{ st *store.Store }

// New returns the service over its store.
func New(st *store.Store) *Service { return &Service{st: st} }

var _ Notifications = (*Service)(nil)

// Handle is the event handler: it records one notification per event id. A malformed
// event is a permanent failure, so it goes to the dead-letter subject.
func (s *Service) Handle(ctx context.Context, msg *pubsub.Message) error {
	var e orders.Event
	if err := json.Unmarshal(msg.Data, &e); err != nil || e.OrderID == "" {
		return pubsub.Permanent(fmt.Errorf("notifications: malformed %s event %s: %v", msg.Subject, msg.ID, err))
	}
	var text string
	switch msg.Subject {
	case orders.SubjectPlaced:
		text = fmt.Sprintf("We received your order %s.", e.OrderID)
	case orders.SubjectConfirmed:
		text = fmt.Sprintf("Your order %s is confirmed: %d.%02d charged.", e.OrderID, e.TotalCents/100, e.TotalCents%100)
	case orders.SubjectCancelled:
		text = fmt.Sprintf("Your order %s was cancelled: %s.", e.OrderID, e.Reason)
	default:
		return nil
	}
	return s.st.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO notifications (message_id, order_id, customer, kind, text, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING`),
			msg.ID, e.OrderID, e.Customer, msg.Type, text, time.Now().UnixMilli())
		return err
	})
}

// ListNotifications returns an order's notifications.
func (s *Service) ListNotifications(ctx context.Context, orderID string) ([]Notification, error) {
	if orderID == "" {
		return nil, svcerr.Invalid("orderId", "is required")
	}
	rows, err := s.st.ReadDB().QueryContext(ctx, s.st.Rebind(`SELECT order_id, customer, kind, text FROM notifications
		WHERE order_id = ? ORDER BY created_at, message_id`), orderID)
	if err != nil {
		return nil, fmt.Errorf("notifications: list: %w", err)
	}
	defer rows.Close()
	out := []Notification{}
	for rows.Next() {
		var n Notification
		if err := rows.Scan(&n.OrderID, &n.Customer, &n.Kind, &n.Text); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Digest records how many notifications went out before tick; the scheduler runs it on
// one replica per tick.
func (s *Service) Digest(ctx context.Context, tick time.Time) (int64, error) {
	var n int64
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.st.Rebind(`SELECT COUNT(*) FROM notifications WHERE created_at < ?`), tick.UnixMilli()).Scan(&n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO digests (tick, sent, created_at) VALUES (?, ?, ?) ON CONFLICT (tick) DO NOTHING`),
			tick.Unix(), n, time.Now().UnixMilli())
		return err
	})
	return n, err
}
