// Package orders takes orders and sees each one through a saga: reserve the stock
// (catalog), charge the customer (payments), confirm. A declined payment or missing stock
// compensates what was done — the charge is refunded, the stock released — and cancels
// the order. The order's row, its saga's checkpoints and its events (OrderPlaced,
// OrderConfirmed, OrderCancelled, through the outbox) all live in the orders store, so an
// order placed survives a crash of the process and ends confirmed or cancelled.
package orders

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/svckit/svckit/examples/shop/catalog"
	"github.com/svckit/svckit/examples/shop/payments"
	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/outbox"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/saga"
	"github.com/svckit/svckit/store"
	"github.com/svckit/svckit/svcerr"
)

// Migrations hold the orders schema.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Orders places orders and reports their state.
type Orders interface {
	// PlaceOrder places order id for customer and returns it once its saga has ended:
	// confirmed, or cancelled with the reason. A saga that outlasts the wait (a peer is
	// restarting) returns the order pending, shortly before the caller's deadline: it
	// ends later, and GetOrder tells how. The caller chooses the id ("ord_" and 20 to 64
	// lower-case hex digits), so a call made again — its answer was lost, this service
	// restarted under it — places the order once and answers as the first did. Without
	// an id (a caller from before ids, whose calls are not made again) the order gets a
	// new one.
	//svckit:idempotent
	PlaceOrder(ctx context.Context, customer string, items []Item, id string) (Order, error)
	// GetOrder returns an order.
	//svckit:http GET /orders/{id}
	GetOrder(ctx context.Context, id string) (Order, error)
}

// Item is a quantity of one product.
type Item struct {
	ProductID string `json:"productId"`
	Quantity  int64  `json:"quantity"`
}

// Order is an order and where it stands.
type Order struct {
	ID         string `json:"id"`
	Customer   string `json:"customer"`
	Status     string `json:"status"` // pending, confirmed, cancelled
	TotalCents int64  `json:"totalCents"`
	Items      []Item `json:"items"`
	Reason     string `json:"reason,omitempty"`
}

// The events the orders service publishes.
const (
	SubjectPlaced    = "shop.orders.placed"
	SubjectConfirmed = "shop.orders.confirmed"
	SubjectCancelled = "shop.orders.cancelled"
)

// Event is the payload of every orders event.
type Event struct {
	OrderID    string `json:"orderId"`
	Customer   string `json:"customer"`
	Status     string `json:"status"`
	TotalCents int64  `json:"totalCents"`
	Reason     string `json:"reason,omitempty"`
}

// Service is the orders implementation.
type Service struct {
	st     *store.Store
	ob     *outbox.Outbox
	sagas  *saga.Orchestrator
	def    *saga.Definition[sagaState]
	wait   time.Duration
	budget time.Duration

	getMu   sync.Mutex
	getStmt *sql.Stmt // GetOrder's query, prepared on first use

	// waiting holds, for each order a PlaceOrder call waits for in this process, where
	// the confirm step leaves the order's final state once its transaction has committed
	// (order id → *finalState): the answer is built from it instead of decoding the
	// saga's state again.
	waiting sync.Map
}

// finalState is the state a confirmed order's saga ended with, once it is known.
type finalState struct{ st atomic.Pointer[sagaState] }

// Option configures the orders service.
type Option func(*Service)

// WithWait sets how long PlaceOrder waits for the order's saga before it returns the
// order pending; default 30s. The caller's deadline, less a margin to answer in, shortens
// it.
func WithWait(d time.Duration) Option { return func(s *Service) { s.wait = d } }

// WithStepBudget sets how long a step that calls catalog or payments retries transient
// failures (the peer unavailable or overloaded, a timeout) before the order is cancelled;
// default saga.DefaultBudget (30s). Refusals (no stock, a declined payment) cancel at once.
func WithStepBudget(d time.Duration) Option { return func(s *Service) { s.budget = d } }

type sagaState struct {
	OrderID  string `json:"orderId"`
	Customer string `json:"customer"`
	Items    []Item `json:"items"`
	Total    int64  `json:"total"`
	Reason   string `json:"reason,omitempty"`
	// Trace is the W3C trace context of the request that placed the order, so that
	// every step — also after a crash and resume — belongs to the order's trace.
	Trace map[string]string `json:"trace,omitempty"`
}

// traced returns ctx with the trace context the saga was started in.
func traced(ctx context.Context, st *sagaState) context.Context {
	if len(st.Trace) == 0 {
		return ctx
	}
	return observe.Propagator().Extract(ctx, propagation.MapCarrier(st.Trace))
}

// A cancelled order's reason is read by the customer, and travels in OrderCancelled
// events: it says why in words a customer can act on and never carries what the failure
// looked like inside (addresses, transport and driver errors). A step that calls another
// service fails with a *stepError: its reason is the other service's own message for a
// refusal of the request (not enough stock, payment declined) and a fixed sentence naming
// the order's trace for a failure of the system (unavailable, timeouts, internal errors),
// whose detail stays in the log. The saga keeps only the text of a step's error, so the
// reason leads that text, up to reasonEnd.

// reasonEnd ends the reason in a stepError's text; the cause follows it.
const reasonEnd = " (cause: "

// genericReason is the reason of a cancellation that no step explained.
const genericReason = "the order could not be completed"

// stepError is the error of a step that calls another service.
type stepError struct {
	reason string // what the customer reads
	err    error  // what the log shows
}

func (e *stepError) Error() string { return e.reason + reasonEnd + e.err.Error() + ")" }
func (e *stepError) Unwrap() error { return e.err }

// failStep returns err as a *stepError of the step that does what; down is the reason
// when the failure is the system's.
func failStep(err error, down string, st *sagaState) error {
	e := svcerr.From(err)
	reason := down + traceOf(st)
	switch e.Kind {
	case svcerr.InvalidArgument, svcerr.NotFound, svcerr.AlreadyExists, svcerr.FailedPrecondition, svcerr.OutOfRange:
		// A refusal of the request: the other service wrote its message for callers.
		if e.Message != "" {
			reason = strings.ReplaceAll(e.Message, reasonEnd, " (")
		}
	}
	return &stepError{reason: reason, err: err}
}

// traceOf returns " (trace ID)" for the trace the order was placed in, or "".
func traceOf(st *sagaState) string {
	// traceparent: version "-" trace id (32 hex digits) "-" span id "-" flags
	tp := st.Trace["traceparent"]
	if len(tp) != 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	id := tp[3:35]
	if strings.Trim(id, "0123456789abcdef") != "" || strings.Trim(id, "0") == "" {
		return ""
	}
	return " (trace " + id + ")"
}

// cleanReason returns the customer's reason from a saga's error, "step NAME: " and a
// stepError's text, or false when the error is no stepError's.
func cleanReason(s string) (string, bool) {
	if rest, ok := strings.CutPrefix(s, "step "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			s = after
		}
	}
	reason, _, ok := strings.Cut(s, reasonEnd)
	if !ok || reason == "" {
		return "", false
	}
	return reason, true
}

// New returns the orders service. Its sagas call cat and pay, which are remote clients
// in the shop and may be the in-process services in tests.
//
// A step that calls catalog or payments waits out a peer that is restarting or
// overloaded: its transient failures (saga.Transient; both calls are idempotent per
// order, so a timeout is one too) are retried with backoff up to 1 s apart for the step
// budget (WithStepBudget, 30 s), while the order stays pending. A refusal of the request
// (no stock, a declined payment, an unknown product) cancels the order at once, and so
// does a budget spent.
func New(st *store.Store, ob *outbox.Outbox, sagas *saga.Orchestrator, cat catalog.Catalog, pay payments.Payments, opts ...Option) *Service {
	s := &Service{st: st, ob: ob, sagas: sagas, wait: 30 * time.Second}
	for _, fn := range opts {
		fn(s)
	}
	retry := saga.Retry{Initial: 20 * time.Millisecond, Max: time.Second}
	s.def = saga.Define("order",
		saga.Step[sagaState]{
			Name: "open",
			// The order row and OrderPlaced commit with the step's checkpoint, so an order
			// exists exactly when its saga does — a crash cannot leave one without the other.
			ActionTx: func(ctx context.Context, tx *sql.Tx, st *sagaState) error {
				return s.open(traced(ctx, st), tx, st)
			},
			// Runs last when the saga compensates: the order ends cancelled.
			CompensateTx: func(ctx context.Context, tx *sql.Tx, st *sagaState) error {
				if st.Reason == "" { // the failed step's state change is not kept; its error is
					if status, err := s.sagas.Status(ctx, st.OrderID); err == nil {
						st.Reason, _ = cleanReason(status.Error)
					}
					if st.Reason == "" {
						st.Reason = genericReason + traceOf(st)
					}
				}
				return s.finish(traced(ctx, st), tx, st, "cancelled", SubjectCancelled)
			},
		},
		saga.Step[sagaState]{
			// The reservation's compensation sits on a step of its own before the
			// reservation: a Reserve that took effect in catalog but failed here (the
			// reply lost, this process killed) is released too. Release is idempotent and
			// harmless for an order catalog never saw. A guard (no action) costs no
			// transaction: it is recorded with the reservation.
			Name:       "stock-guard",
			Compensate: func(ctx context.Context, st *sagaState) error { return cat.Release(traced(ctx, st), st.OrderID) },
		},
		saga.Step[sagaState]{
			Name: "reserve-stock",
			Action: func(ctx context.Context, st *sagaState) error {
				items := make([]catalog.Item, len(st.Items))
				for i, it := range st.Items {
					items[i] = catalog.Item{ProductID: it.ProductID, Quantity: it.Quantity}
				}
				r, err := cat.Reserve(traced(ctx, st), st.OrderID, items)
				if err != nil {
					return failStep(err, "the stock could not be reserved right now; try again later", st)
				}
				st.Total = r.TotalCents
				return nil
			},
			Timeout: 5 * time.Second,
			Retry:   retry,
			// Reserve is idempotent per order: a timed-out call may be made again, and
			// so may one that succeeded, which answers with the same reservation and
			// total. So the reservation is recorded with the charge, not in a
			// transaction of its own: a crash in between reserves again, harmlessly.
			Idempotent:   true,
			NoCheckpoint: true,
			Budget:       s.budget,
		},
		saga.Step[sagaState]{
			// As for stock: a charge that took effect in payments but failed here is
			// refunded. Refund is idempotent and a no-op for an order never charged.
			Name: "payment-guard",
			Compensate: func(ctx context.Context, st *sagaState) error {
				_, err := pay.Refund(traced(ctx, st), st.OrderID)
				return err
			},
		},
		saga.Step[sagaState]{
			Name: "charge",
			Action: func(ctx context.Context, st *sagaState) error {
				_, err := pay.Charge(traced(ctx, st), st.OrderID, st.Customer, st.Total)
				if err != nil {
					return failStep(err, "the payment could not be made right now; try again later", st)
				}
				return nil
			},
			Timeout: 5 * time.Second,
			Retry:   retry,
			// Charge is idempotent per order: a timed-out call may be made again.
			Idempotent: true,
			Budget:     s.budget,
		},
		saga.Step[sagaState]{
			Name: "confirm",
			ActionTx: func(ctx context.Context, tx *sql.Tx, st *sagaState) error {
				st.Reason = ""
				if err := s.finish(traced(ctx, st), tx, st, "confirmed", SubjectConfirmed); err != nil {
					return err
				}
				if w, ok := s.waiting.Load(st.OrderID); ok {
					final := *st // the saga ends with this step: nothing changes it any more
					s.st.AfterCommit(tx, func() { w.(*finalState).st.Store(&final) })
				}
				return nil
			},
		},
	)
	return s
}

// Definition returns the order saga, for registering with the orchestrator before Resume.
func (s *Service) Definition() saga.Runner { return s.def }

var _ Orders = (*Service)(nil)

// finish moves the order to its final status and announces it, in the saga's transaction.
func (s *Service) finish(ctx context.Context, tx *sql.Tx, st *sagaState, status, subject string) error {
	res, err := tx.ExecContext(ctx, s.st.Rebind(`UPDATE orders SET status = ?, total_cents = ?, reason = ?, updated_at = ? WHERE id = ? AND status = 'pending'`),
		status, st.Total, st.Reason, time.Now().UnixMilli(), st.OrderID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil // finished already
	}
	return s.publish(ctx, tx, subject, Event{OrderID: st.OrderID, Customer: st.Customer, Status: status, TotalCents: st.Total, Reason: st.Reason})
}

func (s *Service) publish(ctx context.Context, tx *sql.Tx, subject string, e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	var typ string
	switch subject {
	case SubjectPlaced:
		typ = "OrderPlaced"
	case SubjectConfirmed:
		typ = "OrderConfirmed"
	case SubjectCancelled:
		typ = "OrderCancelled"
	}
	return s.ob.Add(ctx, tx, &pubsub.Message{Subject: subject, Key: e.OrderID, Type: typ, Data: data})
}

// open records the order and its OrderPlaced event.
func (s *Service) open(ctx context.Context, tx *sql.Tx, st *sagaState) error {
	itemsJSON, _ := json.Marshal(st.Items)
	now := time.Now().UnixMilli()
	if _, err := tx.ExecContext(ctx, s.st.Rebind(`INSERT INTO orders (id, customer, status, items, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)`),
		st.OrderID, st.Customer, string(itemsJSON), now, now); err != nil {
		return err
	}
	return s.publish(ctx, tx, SubjectPlaced, Event{OrderID: st.OrderID, Customer: st.Customer, Status: "pending"})
}

// PlaceOrder starts the order's saga, whose first step records the order and its
// OrderPlaced event, and waits for the saga to end — at most the service's wait, and
// only until shortly before ctx's deadline (replyMargin), so that a pending order
// reaches a caller whose deadline ends first.
func (s *Service) PlaceOrder(ctx context.Context, customer string, items []Item, id string) (Order, error) {
	if id == "" {
		id = NewID()
	}
	if !ValidID(id) {
		return Order{}, svcerr.Invalid("id", `must be "ord_" and 20 to 64 lower-case hex digits`)
	}
	if customer == "" {
		return Order{}, svcerr.Invalid("customer", "is required")
	}
	if len(items) == 0 || len(items) > 50 {
		return Order{}, svcerr.Invalid("items", "must hold 1 to 50 items")
	}
	for i, it := range items {
		if it.ProductID == "" {
			return Order{}, svcerr.Invalid(fmt.Sprintf("items[%d].productId", i), "is required")
		}
		if it.Quantity <= 0 || it.Quantity > 1000 {
			return Order{}, svcerr.Invalid(fmt.Sprintf("items[%d].quantity", i), "must be between 1 and 1000")
		}
	}
	// An order placed already (this call is made again, or the id is another
	// customer's): Start does nothing, and the answer below is that order's, or a refusal
	// when another customer placed it (ownOrder).
	//
	// The saga outlives this request: a client that gives up does not stop it. Starting
	// it again under the same id does nothing.
	sagaCtx := context.WithoutCancel(ctx)
	carrier := propagation.MapCarrier{}
	observe.Propagator().Inject(ctx, carrier)
	state := sagaState{OrderID: id, Customer: customer, Items: items, Trace: carrier}
	final := &finalState{}
	s.waiting.Store(id, final)
	defer s.waiting.CompareAndDelete(id, final)
	if _, err := saga.Start(sagaCtx, s.sagas, s.def, state, saga.WithID(id)); err != nil {
		return Order{}, fmt.Errorf("orders: start saga: %w", err)
	}
	wait := s.wait
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		wait = min(wait, left-replyMargin(left))
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	status, err := s.sagas.Wait(waitCtx, id)
	if err != nil {
		// Still running (a dependency is slow): the caller polls GetOrder.
		if o, err := s.GetOrder(context.WithoutCancel(ctx), id); err == nil {
			return ownOrder(o, customer)
		}
		return Order{ID: id, Customer: customer, Status: "pending", Items: items}, nil
	}
	if st := final.st.Load(); st != nil && status.State == saga.Completed {
		return ownOrder(Order{ID: st.OrderID, Customer: st.Customer, Status: "confirmed", TotalCents: st.Total, Items: st.Items}, customer)
	}
	if o, ok := confirmedOrder(status); ok {
		return ownOrder(o, customer)
	}
	o, err := s.GetOrder(ctx, id)
	if err != nil {
		return Order{}, err
	}
	return ownOrder(o, customer)
}

// confirmedOrder returns the order of a saga that completed, from its final state as
// the status holds it (when the confirm step did not hand it over in memory: the saga
// was started by an earlier call, or resumed): the
// confirm step wrote that state's customer, items and total to the order's row, so
// reading the row back would only repeat them. Other ends (a cancellation, whose row the
// compensation may or may not have written) are read from the row.
func confirmedOrder(status saga.Status) (Order, bool) {
	var st sagaState
	if status.State != saga.Completed || json.Unmarshal(status.Data, &st) != nil || st.OrderID != status.ID {
		return Order{}, false
	}
	return Order{ID: st.OrderID, Customer: st.Customer, Status: "confirmed", TotalCents: st.Total, Items: st.Items}, true
}

// ownOrder returns o if customer placed it: an id that another customer's order has is
// refused rather than answered with that order.
func ownOrder(o Order, customer string) (Order, error) {
	if o.Customer != customer {
		return Order{}, svcerr.Errorf(svcerr.AlreadyExists, "order %q exists", o.ID)
	}
	return o, nil
}

// replyMargin is the part of the time left before a caller's deadline that PlaceOrder
// keeps to answer in: a fifth, at most 2 s.
func replyMargin(left time.Duration) time.Duration { return min(left/5, 2*time.Second) }

// GetOrder returns an order.
func (s *Service) GetOrder(ctx context.Context, id string) (Order, error) {
	o := Order{ID: id}
	var items string
	stmt, err := s.getOrderStmt(ctx)
	if err != nil {
		return Order{}, fmt.Errorf("orders: get %s: %w", id, err)
	}
	err = stmt.QueryRowContext(ctx, id).Scan(&o.Customer, &o.Status, &o.TotalCents, &items, &o.Reason)
	if errors.Is(err, sql.ErrNoRows) {
		return Order{}, svcerr.Errorf(svcerr.NotFound, "order %q does not exist", id)
	}
	if err != nil {
		return Order{}, fmt.Errorf("orders: get %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return Order{}, fmt.Errorf("orders: get %s: items: %w", id, err)
	}
	return o, nil
}

// getOrderStmt returns GetOrder's query, prepared once: parsing it on every call cost a
// third of GetOrder's CPU.
func (s *Service) getOrderStmt(ctx context.Context) (*sql.Stmt, error) {
	s.getMu.Lock()
	defer s.getMu.Unlock()
	if s.getStmt == nil {
		stmt, err := s.st.ReadDB().PrepareContext(ctx, s.st.Rebind(`SELECT customer, status, total_cents, items, reason FROM orders WHERE id = ?`))
		if err != nil {
			return nil, err
		}
		s.getStmt = stmt
	}
	return s.getStmt, nil
}

// NewID returns a new order id: "ord_", the time in milliseconds (12 hex digits), then 80
// random bits (20 hex digits). Ids placed later sort later, so the indexes keyed by order
// id — the order's row, its saga, catalog's reservation, payments' charge, the
// notifications — grow at one end: a group commit of many orders writes a few pages of
// each index instead of one page per order (random ids touch pages all over the b-tree).
func NewID() string { return newID(time.Now()) }

func newID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return "ord_" + hex.EncodeToString(b[:])
}

// IDFor returns the order id of a customer's request with an idempotency key: the same
// for the same customer and key, and another customer's key never gives it.
func IDFor(customer, key string) string {
	h := sha256.Sum256([]byte(customer + "\x00" + key))
	return "ord_" + hex.EncodeToString(h[:20])
}

// ValidID reports whether id is an order id: "ord_" and 20 to 64 lower-case hex digits.
func ValidID(id string) bool {
	hexPart, ok := strings.CutPrefix(id, "ord_")
	if !ok || len(hexPart) < 20 || len(hexPart) > 64 {
		return false
	}
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
