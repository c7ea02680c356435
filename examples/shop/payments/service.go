// Package payments charges customers for orders and refunds them. A charge is idempotent
// by order id: calling Charge again for the same order returns the first outcome, so a
// retried or replayed call never charges twice. A configurable decline rule lets tests
// and demos exercise the order saga's compensation.
package payments

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// Migrations hold the payments schema.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Payments charges and refunds.
type Payments interface {
	// Charge charges customer amountCents for an order, once per order.
	Charge(ctx context.Context, orderID, customer string, amountCents int64) (Payment, error)
	// Refund refunds an order's charge; refunding twice refunds once.
	Refund(ctx context.Context, orderID string) (Payment, error)
	// GetPayment returns an order's payment.
	//svckit:http GET /payments/{orderID}
	GetPayment(ctx context.Context, orderID string) (Payment, error)
}

// Payment is the outcome of charging an order.
type Payment struct {
	ID          string `json:"id"`
	OrderID     string `json:"orderId"`
	Customer    string `json:"customer"`
	AmountCents int64  `json:"amountCents"`
	Status      string `json:"status"` // charged, declined, refunded, voided (refunded before any charge)
	Reason      string `json:"reason,omitempty"`
}

// DeclineRule says which charges are declined.
type DeclineRule struct {
	// AboveCents declines charges larger than this (0: no limit).
	AboveCents int64
	// CustomerPrefix declines customers whose name starts with it (empty: none).
	CustomerPrefix string
}

func (r DeclineRule) declines(customer string, amount int64) string {
	switch {
	case r.AboveCents > 0 && amount > r.AboveCents:
		return fmt.Sprintf("amount %d exceeds the limit of %d", amount, r.AboveCents)
	case r.CustomerPrefix != "" && strings.HasPrefix(customer, r.CustomerPrefix):
		return "card declined"
	}
	return ""
}

// ErrDeclined is the kind of error a declined charge returns; its message says why.
var ErrDeclined = svcerr.New(svcerr.FailedPrecondition, "payment declined")

// Service is the payments implementation.
type Service struct {
	st   *store.Store
	rule DeclineRule
}

// New returns the payments service over its store.
func New(st *store.Store, rule DeclineRule) *Service { return &Service{st: st, rule: rule} }

var _ Payments = (*Service)(nil)

// Charge charges once per order. A declined charge is recorded too, so a retry gets the
// same decline.
func (s *Service) Charge(ctx context.Context, orderID, customer string, amountCents int64) (Payment, error) {
	switch {
	case orderID == "":
		return Payment{}, svcerr.Invalid("orderId", "is required")
	case customer == "":
		return Payment{}, svcerr.Invalid("customer", "is required")
	case amountCents <= 0:
		return Payment{}, svcerr.Invalid("amountCents", "must be positive")
	}
	var p Payment
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		// The charge is inserted unless the order has one: the common case, a first
		// charge, takes one statement; the order's payment is read only when it exists.
		p = Payment{ID: newID(), OrderID: orderID, Customer: customer, AmountCents: amountCents, Status: "charged"}
		if reason := s.rule.declines(customer, amountCents); reason != "" {
			p.Status, p.Reason = "declined", reason
		}
		now := time.Now().UnixMilli()
		res, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO payments (id, order_id, customer, amount_cents, status, reason, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING`), p.ID, p.OrderID, p.Customer, p.AmountCents, p.Status, p.Reason, now, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		existing, err := s.get(ctx, tx, orderID)
		if err != nil {
			return err
		}
		if existing.Status == "voided" {
			return svcerr.Errorf(svcerr.FailedPrecondition, "order %s was cancelled before it was charged", orderID).WithMeta("reason", "voided")
		}
		if existing.AmountCents != amountCents || existing.Customer != customer {
			return svcerr.Errorf(svcerr.AlreadyExists, "order %s was charged with different details", orderID)
		}
		p = existing
		return nil
	})
	if err != nil {
		return Payment{}, err
	}
	if p.Status == "declined" {
		return p, svcerr.Errorf(svcerr.FailedPrecondition, "payment declined: %s", p.Reason).WithMeta("reason", "declined")
	}
	return p, nil
}

// Refund refunds a charged order once; refunding a declined charge changes nothing and is
// not an error, so a saga's compensation can always run. Refunding an order never charged
// voids it: a charge for it that arrives later (one the saga gave up on while it was
// still in flight) is refused, so no cancelled order is ever charged.
func (s *Service) Refund(ctx context.Context, orderID string) (Payment, error) {
	if orderID == "" {
		return Payment{}, svcerr.Invalid("orderId", "is required")
	}
	var p Payment
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		p, err = s.get(ctx, tx, orderID)
		if svcerr.KindOf(err) == svcerr.NotFound {
			p = Payment{ID: newID(), OrderID: orderID, Status: "voided", Reason: "refunded before any charge"}
			now := time.Now().UnixMilli()
			_, err = tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO payments (id, order_id, customer, amount_cents, status, reason, created_at, updated_at)
				VALUES (?, ?, '', 0, ?, ?, ?, ?)`), p.ID, p.OrderID, p.Status, p.Reason, now, now)
			return err
		}
		if err != nil || p.Status != "charged" {
			return err
		}
		p.Status = "refunded"
		_, err = tx.ExecContext(ctx, s.st.Rebind(`UPDATE payments SET status = 'refunded', updated_at = ? WHERE order_id = ?`), time.Now().UnixMilli(), orderID)
		return err
	})
	return p, err
}

// GetPayment returns an order's payment.
func (s *Service) GetPayment(ctx context.Context, orderID string) (Payment, error) {
	return s.get(ctx, s.st.ReadDB(), orderID)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Service) get(ctx context.Context, q querier, orderID string) (Payment, error) {
	p := Payment{OrderID: orderID}
	err := q.QueryRowContext(ctx, s.st.Rebind(`SELECT id, customer, amount_cents, status, reason FROM payments WHERE order_id = ?`), orderID).
		Scan(&p.ID, &p.Customer, &p.AmountCents, &p.Status, &p.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Payment{}, svcerr.Errorf(svcerr.NotFound, "no payment for order %s", orderID)
	}
	if err != nil {
		return Payment{}, fmt.Errorf("payments: get %s: %w", orderID, err)
	}
	return p, nil
}

// newID returns a new payment id: "pay_", the time in milliseconds (12 hex digits), then
// 64 random bits. Later ids sort later, so the primary key's index grows at one end
// instead of taking a write on a random page per charge.
func newID() string {
	var b [14]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return "pay_" + hex.EncodeToString(b[:])
}
