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
	"strconv"
	"sync"
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
type Service struct {
	st  *store.Store
	rec *recorder
}

// Option configures the service.
type Option func(*Service)

// WithBatch sets how events are recorded: the first event of a batch waits up to linger
// for others, and a batch holds at most max events, all committed in one transaction;
// default 20 ms and 32. Linger 0 records each event in a transaction of its own. At the
// shop's few hundred events per second per replica, 20 ms makes batches of several
// events where 5 ms made batches of one or two, and a transaction costs far more than an
// insert in it (more still when another replica wrote the file since: SQLite then reads
// its pages again); a notification recorded 20 ms later is no one's wait.
func WithBatch(linger time.Duration, max int) Option {
	return func(s *Service) { s.rec.linger, s.rec.max = linger, max }
}

// New returns the service over its store.
func New(st *store.Store, opts ...Option) *Service {
	s := &Service{st: st, rec: &recorder{st: st, linger: 20 * time.Millisecond, max: 32,
		insert: st.Rebind(`INSERT INTO notifications (message_id, order_id, customer, kind, text, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING`)}}
	for _, fn := range opts {
		fn(s)
	}
	s.rec.max = max(s.rec.max, 1)
	return s
}

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
		text = "We received your order " + e.OrderID + "."
	case orders.SubjectConfirmed:
		text = "Your order " + e.OrderID + " is confirmed: " + formatCents(e.TotalCents) + " charged."
	case orders.SubjectCancelled:
		text = "Your order " + e.OrderID + " was cancelled: " + e.Reason + "."
	default:
		return nil
	}
	return s.rec.record(ctx, notificationRow{ctx: ctx, messageID: msg.ID, orderID: e.OrderID, customer: e.Customer,
		kind: msg.Type, text: text, at: time.Now().UnixMilli()})
}

// formatCents writes an amount in cents as units and two decimals, such as 24.90.
func formatCents(c int64) string {
	var b [24]byte
	out := b[:0]
	if c < 0 {
		out = append(out, '-')
		c = -c // an int64 amount: no order totals math.MinInt64 cents
	}
	out = strconv.AppendInt(out, c/100, 10)
	out = append(out, '.', byte('0'+c%100/10), byte('0'+c%10))
	return string(out)
}

// notificationRow is one notification to record, with the context of the event it tells
// of (its trace).
type notificationRow struct {
	ctx                                      context.Context
	messageID, orderID, customer, kind, text string
	at                                       int64
}

// recorder records notifications in batches: events arrive a few at a time, and a
// transaction for each cost a begin and a commit (a WAL write) per event — most of the
// service's CPU. The first event of a batch waits up to linger for others (events are
// asynchronous: a few milliseconds is no one's wait), then one transaction inserts them
// all. A batch that fails is recorded event by event, so one bad event fails alone.
type recorder struct {
	st     *store.Store
	insert string // the INSERT, in the store's placeholders
	linger time.Duration
	max    int

	mu   sync.Mutex
	open *rowBatch // the batch events join; nil: the next event opens one
}

// rowBatch is a batch of notifications; done is closed once it is recorded, with err.
type rowBatch struct {
	rows []notificationRow
	full chan struct{} // closed when the batch reached max
	done chan struct{}
	err  error
}

// record records r, in a batch with the events that arrive with it, and returns once that
// batch is committed. The insert is idempotent per message id, so an event redelivered,
// or recorded again alone after its batch failed, is recorded once.
func (rc *recorder) record(ctx context.Context, r notificationRow) error {
	if rc.linger <= 0 || rc.max == 1 {
		return rc.commit(ctx, []notificationRow{r})
	}
	rc.mu.Lock()
	b, first := rc.open, rc.open == nil
	if first {
		b = &rowBatch{full: make(chan struct{}), done: make(chan struct{})}
		rc.open = b
	}
	b.rows = append(b.rows, r)
	if len(b.rows) == rc.max {
		rc.open = nil // no more joins
		close(b.full)
	}
	rc.mu.Unlock()
	if !first {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if b.err != nil {
			return rc.commit(ctx, []notificationRow{r})
		}
		return nil
	}
	// The first event's handler records the batch.
	t := time.NewTimer(rc.linger)
	select {
	case <-t.C:
	case <-b.full:
	case <-ctx.Done():
	}
	t.Stop()
	rc.mu.Lock()
	if rc.open == b {
		rc.open = nil
	}
	rows := b.rows
	rc.mu.Unlock()
	b.err = rc.commit(context.WithoutCancel(ctx), rows)
	close(b.done)
	if b.err != nil && len(rows) > 1 {
		return rc.commit(ctx, []notificationRow{r})
	}
	return b.err
}

// commit inserts rows in one transaction, each statement in its event's context (its
// span in that event's trace).
func (rc *recorder) commit(ctx context.Context, rows []notificationRow) error {
	q := rc.insert
	return rc.st.InTx(ctx, func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(context.WithoutCancel(r.ctx), q, r.messageID, r.orderID, r.customer, r.kind, r.text, r.at); err != nil {
				return fmt.Errorf("notifications: record %s: %w", r.messageID, err)
			}
		}
		return nil
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

// digestCount counts the notifications created before a time (Unix milliseconds), from
// the index on created_at (migration 003) rather than a scan of the table.
const digestCount = `SELECT COUNT(*) FROM notifications WHERE created_at < ?`

// Digest records how many notifications went out before tick; the scheduler runs it on
// one replica per tick.
func (s *Service) Digest(ctx context.Context, tick time.Time) (int64, error) {
	var n int64
	err := s.st.InTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.st.Rebind(digestCount), tick.UnixMilli()).Scan(&n); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO digests (tick, sent, created_at) VALUES (?, ?, ?) ON CONFLICT (tick) DO NOTHING`),
			tick.Unix(), n, time.Now().UnixMilli())
		return err
	})
	return n, err
}
