// Package outbox is the transactional outbox: a service writes its business rows and the
// events that announce them in one local transaction, and a [Relay] publishes the events
// afterwards, in order, so that no event is lost when the process crashes and no event is
// published for a transaction that rolled back.
//
//	err := st.InTx(ctx, func(tx *sql.Tx) error {
//		if _, err := tx.ExecContext(ctx, "INSERT INTO orders …"); err != nil {
//			return err
//		}
//		return ob.Add(ctx, tx, &pubsub.Message{Subject: "events.orders.created", Key: id, Data: body})
//	})
//
// The events live in the outbox table of the service's own store (package store). The
// relay reads unsent rows in sequence order in batches, publishes each batch
// asynchronously with the event id as the JetStream de-duplication id (Nats-Msg-Id),
// waits for every ack, and marks the batch sent with one UPDATE: on SQLite, whose single
// writer commits rows in sequence order, of a cursor row (outbox_cursor) that records the
// highest sequence number published, so a row is written once; on PostgreSQL, of the
// batch's rows (sent_at). A crash between the publish and the mark makes the next relay
// publish the batch again, which JetStream drops as duplicates within its duplicate
// window; consumers that de-duplicate by message id make delivery effectively once
// beyond it.
//
// Events are published in sequence order, which on SQLite is commit order. A publish that
// fails in the middle of a batch (a cluster electing a leader) is repeated, and the
// repeated events then follow later events of the same batch in the stream: per-key order
// holds when no publish fails. On PostgreSQL, where a later sequence number can commit
// first, events of concurrent transactions can be published in either order.
//
// On SQLite the relay does not read back the rows it has just been told about: Add keeps
// the rows of each transaction in memory once it commits (bounded, and only while a relay
// of the Outbox holds the lease in this process), and the relay
// publishes from there a run of rows that starts right after its cursor and has no gap;
// for anything else (rows written outside Add or by another process, a full queue, a
// restart) it reads the table, which stays the truth.
//
// The relay wakes up when a transaction that added events commits (through
// store.AfterCommit; no polling on the fast path), waits a short linger (2ms by default,
// see [Linger]) so that the events of the transactions committing meanwhile go out in
// the same batch, and polls slowly as a fallback for
// rows written by other processes or outside Store.InTx. Only one relay per store
// publishes at a time: it holds a lease row that it renews, and that another relay takes
// over once it expires.
package outbox

import (
	"bytes"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// MigrationSet is the store migration set that holds the outbox tables.
const MigrationSet = "outbox"

// Outbox adds events to a store's outbox table.
type Outbox struct {
	st     *store.Store
	notify chan struct{}
	// told: Notify was called since the relay last woke up, so rows may have been
	// written outside Add (wakes from Add's own commits leave it unset).
	told atomic.Bool
	prop propagation.TextMapPropagator
	// qInsert adds a row; run as text, so the store's connection keeps it prepared
	// (SQLite) or pgx does (PostgreSQL).
	qInsert string
	// cursor: sent events are those at or below the relay's cursor (SQLite), not those
	// with a sent_at (PostgreSQL).
	cursor   bool
	qPending string
	// recent: the rows of committed transactions, for the relay (cursor mode only).
	recent recent
}

// New returns the outbox of st, creating its tables (migration set "outbox") if needed.
func New(ctx context.Context, st *store.Store) (*Outbox, error) {
	if err := st.Migrate(ctx, migrations, store.WithSet(MigrationSet), store.WithDir("migrations")); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o := &Outbox{
		st:       st,
		notify:   make(chan struct{}, 1),
		prop:     observe.Propagator(),
		qInsert:  st.Rebind("INSERT INTO outbox (id, subject, key, payload, headers, created_at) VALUES (?, ?, ?, ?, ?, ?)"),
		cursor:   st.Dialect() == store.SQLite,
		qPending: "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL",
	}
	if o.cursor {
		o.qPending = st.Rebind("SELECT COUNT(*) FROM outbox WHERE seq > (SELECT seq FROM outbox_cursor WHERE name = ?)")
	}
	return o, nil
}

// Store returns the outbox's store.
func (o *Outbox) Store() *store.Store { return o.st }

// The header names under which the CloudEvents attributes are kept in the headers column.
const (
	hType        = pubsub.HeaderType
	hSource      = pubsub.HeaderSource
	hTime        = pubsub.HeaderTime
	hContentType = pubsub.HeaderContentType
)

// Add writes msgs to the outbox within tx, the transaction that writes the business rows
// they announce. A message without an ID gets one, and one without a Time gets now. When
// ctx carries a sampled span, each message gets a producer span ("publish SUBJECT",
// attribute svckit.outbox=true) whose trace context is stored with it, so that the
// consumer's span continues the trace of the request that added the message. If tx was started by the store's InTx, the relay is
// woken when tx commits; otherwise call Notify after the commit, or the relay finds the
// rows at its next poll.
func (o *Outbox) Add(ctx context.Context, tx *sql.Tx, msgs ...*pubsub.Message) error {
	now := time.Now()
	parent := trace.SpanFromContext(ctx)
	var rows []row // for the relay, once tx has committed (cursor mode, a relay running)
	if o.cursor && o.recent.on.Load() {
		rows = make([]row, 0, len(msgs))
	}
	for _, m := range msgs {
		if m.Subject == "" {
			return errors.New("outbox: message without subject")
		}
		if m.ID == "" {
			m.ID = nuid.Next()
		}
		// The headers column: what the propagator injects, the message's headers, then
		// its CloudEvents attributes, later pairs overriding earlier ones with the same
		// key. The time is kept only when the caller set it; otherwise it is the row's
		// created_at.
		h, span := o.inject(ctx, parent, m)
		for k, v := range m.Headers {
			h = appendHeader(h, k, v)
		}
		if m.Type != "" {
			h = appendHeader(h, hType, m.Type)
		}
		if m.Source != "" {
			h = appendHeader(h, hSource, m.Source)
		}
		if m.ContentType != "" {
			h = appendHeader(h, hContentType, m.ContentType)
		}
		if m.Time.IsZero() {
			m.Time = now
		} else {
			h = appendHeader(h, hTime, m.Time.UTC().Format(time.RFC3339Nano))
		}
		hs := string(h)
		res, err := tx.ExecContext(ctx, o.qInsert, m.ID, m.Subject, m.Key, m.Data, hs, now.UnixNano())
		if err == nil && rows != nil {
			var seq int64
			if seq, err = res.LastInsertId(); err == nil {
				rows = append(rows, row{seq: seq, id: m.ID, subject: m.Subject, key: m.Key,
					payload: bytes.Clone(m.Data), headers: hs, created: now.UnixNano()})
			}
		}
		if span != nil {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
		if err != nil {
			return fmt.Errorf("outbox: add: %w", err)
		}
	}
	if rows == nil {
		o.st.AfterCommit(tx, o.Notify)
		return nil
	}
	o.st.AfterCommit(tx, func() {
		o.recent.push(rows)
		o.wake()
	})
	return nil
}

// inject returns the start of the message m's headers column: its trace context. When
// ctx carries a recording span (parent), the message gets a producer span of its own,
// "publish SUBJECT", a child of parent, which the consumer's span then continues: the
// waterfall shows the event leaving the service that added it. The caller ends the
// returned span once the row is written; it is nil when there is none. Without a span
// context, it returns nothing and allocates nothing.
func (o *Outbox) inject(ctx context.Context, parent trace.Span, m *pubsub.Message) ([]byte, trace.Span) {
	if !parent.SpanContext().IsValid() {
		return nil, nil
	}
	h := new([]byte)
	var span trace.Span
	if parent.IsRecording() {
		ctx, span = parent.TracerProvider().Tracer(observe.ScopeName).Start(ctx, "publish "+m.Subject,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.destination.name", m.Subject),
				attribute.String("messaging.message.id", m.ID),
				attribute.Bool("svckit.outbox", true),
			))
	}
	o.prop.Inject(ctx, headerWriter{h})
	return *h, span
}

// Notify wakes the relay of this Outbox to look for new rows.
func (o *Outbox) Notify() {
	o.told.Store(true)
	o.wake()
}

// wake wakes the relay for rows that Add has handed to it in memory (Outbox.recent): the
// relay then reads the table only if some row did not make it there.
func (o *Outbox) wake() {
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// Pending returns the number of unsent events; use it for a metric or a health check.
func (o *Outbox) Pending(ctx context.Context) (int, error) {
	var n int
	var args []any
	if o.cursor {
		args = append(args, leaseName)
	}
	err := o.st.ReadDB().QueryRowContext(ctx, o.qPending, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("outbox: pending: %w", err)
	}
	return n, nil
}

// decode rebuilds a message from an outbox row. A row without a ce-time header has the
// time it was added, created (Unix nanoseconds).
func decode(id, subject, key string, payload []byte, headers string, created int64) (*pubsub.Message, error) {
	m := new(pubsub.Message)
	if err := decodeInto(m, id, subject, key, payload, headers, created); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeInto is decode into m, a zero Message: the relay decodes a batch into one array.
func decodeInto(m *pubsub.Message, id, subject, key string, payload []byte, headers string, created int64) error {
	m.ID, m.Subject, m.Key, m.Data = id, subject, key, payload
	timed := false
	for s := headers; s != ""; {
		k, v, rest, err := nextHeader(s)
		if err != nil {
			return fmt.Errorf("outbox: event %s: %w", id, err)
		}
		s = rest
		switch k {
		case hType:
			m.Type = v
		case hSource:
			m.Source = v
		case hContentType:
			m.ContentType = v
		case hTime:
			m.Time, _ = time.Parse(time.RFC3339Nano, v)
			timed = true
		default:
			if m.Headers == nil {
				m.Headers = make(map[string]string, 4)
			}
			m.Headers[k] = v
		}
	}
	if !timed {
		m.Time = time.Unix(0, created).UTC()
	}
	return nil
}
