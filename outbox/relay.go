package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/pubsub"
	"github.com/svckit/svckit/store"
)

// RelayOption configures a Relay.
type RelayOption func(*Relay)

// BatchSize sets how many events the relay publishes and marks at once; default 1000.
func BatchSize(n int) RelayOption { return func(r *Relay) { r.batch = max(n, 1) } }

// PollInterval sets how often the relay looks for rows nobody told it about (written by
// another process, or outside Store.InTx); default 1s.
func PollInterval(d time.Duration) RelayOption { return func(r *Relay) { r.poll = d } }

// Linger sets how long the relay waits, once a committed transaction has woken it from
// idle, for more events to commit before it reads and publishes; default 2ms (DefaultLinger). Each
// wake-up costs a read, a publish to JetStream and its acknowledgement, and a mark of
// what was sent, whatever the number of events: at a moderate rate, where every event
// would otherwise go out on its own, a short linger gathers the events of several
// transactions into one batch, at the price of that much more latency per event. It never
// delays a full batch, nor the batches that follow one while events keep coming. Zero
// publishes at once.
func Linger(d time.Duration) RelayOption { return func(r *Relay) { r.linger = max(d, 0) } }

// DefaultLinger is the relay's linger unless Linger sets another.
const DefaultLinger = 2 * time.Millisecond

// LeaseTTL sets how long the relay's lease lasts without renewal; another relay takes
// over that long after this one died. It is renewed every third of it. Default 10s.
// Relays compare expiry times taken from their own clocks, so on a PostgreSQL store
// shared by several hosts keep it well above the clock skew between them.
func LeaseTTL(d time.Duration) RelayOption { return func(r *Relay) { r.ttl = d } }

// Owner names this relay in the lease row; default a random id. Relays with the same
// owner share the lease, so give each process its own.
func Owner(id string) RelayOption { return func(r *Relay) { r.owner = id } }

// Retention sets how long events are kept before the relay deletes them, once they are
// sent; default one hour. On PostgreSQL it counts from the time they were sent, on SQLite
// from the time they were added. Zero keeps them forever.
func Retention(d time.Duration) RelayOption { return func(r *Relay) { r.retention = d } }

// RelayLogger sets the logger for publish and store errors; default none.
func RelayLogger(l *slog.Logger) RelayOption { return func(r *Relay) { r.logger = l } }

// Relay publishes the events of an Outbox.
type Relay struct {
	o         *Outbox
	pub       pubsub.Publisher
	batch     int
	poll      time.Duration
	linger    time.Duration
	ttl       time.Duration
	owner     string
	retention time.Duration
	logger    *slog.Logger
	tp        trace.TracerProvider // relay spans (relaytrace.go); nil: none

	tableReads atomic.Int64 // reads of the outbox table done, for tests

	// cursor: the relay records the highest sequence number it has published in the
	// outbox_cursor table instead of marking each row sent (SQLite, see loop).
	cursor bool

	// The relay's statements, each built once with a constant text: the store's SQLite
	// connections keep the statements of the texts they run prepared (per connection), and
	// pgx does on PostgreSQL, so polling parses none of them again.
	qSelect, qMarkAny, qAcquire, qRenew, qRelease, qPurge string
	qCursor, qAdvance                                     string
}

// leaseName is the name of the relay lease row.
const leaseName = "relay"

// Relay returns a relay that publishes the outbox's events with pub. Start it with Run.
func (o *Outbox) Relay(pub pubsub.Publisher, opts ...RelayOption) *Relay {
	r := &Relay{o: o, pub: pub, batch: 1000, poll: time.Second, linger: DefaultLinger, ttl: 10 * time.Second, owner: nuid.Next(), retention: time.Hour}
	for _, fn := range opts {
		fn(r)
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	rb := o.st.Rebind
	r.cursor = o.cursor
	r.qSelect = rb("SELECT seq, id, subject, key, payload, headers, created_at FROM outbox WHERE sent_at IS NULL AND seq > ? ORDER BY seq LIMIT ?")
	if r.cursor {
		r.qSelect = rb("SELECT seq, id, subject, key, payload, headers, created_at FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?")
	}
	r.qMarkAny = rb("UPDATE outbox SET sent_at = ? WHERE seq = ANY(?)")
	r.qAcquire = rb(`INSERT INTO outbox_lease (name, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE outbox_lease.expires_at < ? OR outbox_lease.owner = excluded.owner`)
	r.qRenew = rb("UPDATE outbox_lease SET expires_at = ? WHERE name = ? AND owner = ?")
	r.qRelease = rb("DELETE FROM outbox_lease WHERE name = ? AND owner = ?")
	r.qPurge = rb("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?")
	if r.cursor {
		r.qCursor = rb("SELECT seq FROM outbox_cursor WHERE name = ?")
		// Only forward, and only while this relay holds the lease: a relay that lost it
		// cannot move the cursor of the one that took over.
		r.qAdvance = rb(`UPDATE outbox_cursor SET seq = ? WHERE name = ? AND seq < ?
			AND EXISTS (SELECT 1 FROM outbox_lease WHERE name = ? AND owner = ?)`)
		// Sequence numbers are never handed out again (AUTOINCREMENT, migration 003), so
		// rows may be deleted up to the cursor, the last one too.
		r.qPurge = rb("DELETE FROM outbox WHERE seq <= (SELECT seq FROM outbox_cursor WHERE name = ?) AND created_at < ?")
	}
	return r
}

// Run relays events until ctx ends, and returns nil then. While another relay holds the
// lease, it waits; when it loses its lease (it could not renew it in time), it stops
// publishing and competes for the lease again.
func (r *Relay) Run(ctx context.Context) error {
	defer func() {
		_, _ = r.o.st.DB().ExecContext(context.WithoutCancel(ctx), r.qRelease, leaseName, r.owner)
	}()
	for ctx.Err() == nil {
		ok, err := r.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			r.logger.WarnContext(ctx, "outbox: lease", slog.String("error", err.Error()))
		}
		if !ok {
			sleep(ctx, r.ttl/3)
			continue
		}
		lctx, cancel := context.WithCancel(ctx)
		lost := make(chan struct{})
		go func() {
			defer close(lost)
			r.renew(lctx)
			cancel()
		}()
		if r.cursor {
			r.o.recent.start()
		}
		r.loop(lctx)
		if r.cursor {
			r.o.recent.stop()
		}
		cancel()
		<-lost
	}
	return nil
}

// acquire takes the lease if it is free, expired or ours.
func (r *Relay) acquire(ctx context.Context) (bool, error) {
	now := time.Now()
	res, err := r.o.st.DB().ExecContext(ctx, r.qAcquire, leaseName, r.owner, now.Add(r.ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// renew extends the lease every ttl/3 until ctx ends or the lease is lost: not renewed
// before it expired, or taken by another relay.
func (r *Relay) renew(ctx context.Context) {
	valid := time.Now().Add(r.ttl)
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		res, err := r.o.st.DB().ExecContext(ctx, r.qRenew, now.Add(r.ttl).UnixNano(), leaseName, r.owner)
		if err == nil {
			if n, _ := res.RowsAffected(); n == 1 {
				valid = now.Add(r.ttl)
				continue
			}
			r.logger.WarnContext(ctx, "outbox: relay lease taken by another relay")
			return
		}
		if ctx.Err() != nil {
			return
		}
		r.logger.WarnContext(ctx, "outbox: renew lease", slog.String("error", err.Error()))
		if time.Now().After(valid) {
			return
		}
	}
}

// loop relays while ctx lasts: drain everything, then wait for a notification or the
// poll interval.
//
// Marking a batch sent runs while the next batch is read and published: the relay keeps
// a cursor, the highest sequence number it has published, and reads only rows above it,
// so a batch that is still being marked is not read again. The cursor starts over
// (rewinds) whenever the outbox looks empty and after a failure. On SQLite, whose single
// writer commits rows in sequence order, no row can appear below the cursor while rows
// remain, so the cursor itself is what the relay records: marking a batch sent is one
// update of the outbox_cursor row, not an update of every row, and rewinding reads the
// recorded cursor; sequence numbers are never handed out again (AUTOINCREMENT), so no
// new row can get a number at or below it. On PostgreSQL a transaction can commit a
// lower sequence number after a higher one, so there rows are marked sent one by one,
// rewinding goes back to zero, and the cursor also rewinds at every poll interval, so
// that such a row waits at most that long even under constant load.
func (r *Relay) loop(ctx context.Context) {
	pause := 10 * time.Millisecond
	lastPurge, lastRewind := time.Now(), time.Now()
	var cursor int64
	rewind := true         // read the cursor's start before the next read
	fresh := false         // nothing was read since the last rewind
	var next *batch        // read ahead while the previous batch was published
	var marking chan error // the mark in flight, if any
	drain := false         // the last batch came from memory: the next read may skip the table
	waitMark := func() {
		if marking == nil {
			return
		}
		if err := <-marking; err != nil {
			if ctx.Err() == nil {
				r.logger.WarnContext(ctx, "outbox: relay", slog.String("error", err.Error()))
			}
			// Publish the batch again; JetStream drops the duplicates.
			rewind, next = true, nil
		}
		marking = nil
	}
	defer waitMark()
	failed := func(err error) {
		waitMark()
		rewind, next = true, nil
		if ctx.Err() != nil {
			return
		}
		r.logger.WarnContext(ctx, "outbox: relay", slog.String("error", err.Error()))
		sleep(ctx, pause)
		pause = min(2*pause, 2*time.Second)
	}
	rewindable := r.o.st.Dialect() == store.Postgres
	for ctx.Err() == nil {
		if rewindable && time.Since(lastRewind) > r.poll {
			waitMark()
			rewind, next, lastRewind = true, nil, time.Now()
		}
		if rewind {
			start, err := r.start(ctx)
			if err != nil {
				failed(err)
				continue
			}
			cursor, rewind, fresh, drain = start, false, true, false
		}
		var b batch
		if next != nil {
			b, next = *next, nil
		} else {
			var err error
			if b, err = r.read(ctx, cursor, drain); err != nil {
				failed(err)
				continue
			}
		}
		if n := len(b.seqs); n > 0 {
			fresh = false
			published := make(chan error, 1)
			go func() { published <- r.publish(ctx, b.msgs) }()
			if n == r.batch {
				// More rows are likely waiting: read them while this batch is published.
				if nb, err := r.read(ctx, b.seqs[n-1], false); err == nil && len(nb.seqs) > 0 {
					next = &nb
				}
			}
			if err := <-published; err != nil {
				failed(fmt.Errorf("outbox: publish: %w", err))
				continue
			}
			pause = 10 * time.Millisecond
			waitMark()
			cursor, drain = b.seqs[n-1], b.memory
			marking = make(chan error, 1)
			go func(done chan<- error, seqs []int64) { done <- r.mark(ctx, seqs) }(marking, b.seqs)
			if n == r.batch || next != nil {
				continue
			}
		}
		// Nothing more to read: finish the mark before sleeping, so the state in the
		// store is current, and see whether the outbox is really empty.
		if marking != nil {
			waitMark()
			continue
		}
		if !fresh && rewindable {
			// Read once more from the start before sleeping: on PostgreSQL a lower
			// sequence number may have committed late.
			rewind, lastRewind = true, time.Now()
			continue
		}
		if r.retention > 0 && time.Since(lastPurge) > min(r.retention, time.Minute) {
			lastPurge = time.Now()
			if err := r.purge(ctx); err != nil && ctx.Err() == nil {
				r.logger.WarnContext(ctx, "outbox: purge", slog.String("error", err.Error()))
			}
		}
		drain = false
		select {
		case <-ctx.Done():
		case <-r.o.notify:
			if r.linger > 0 {
				// Gather what commits meanwhile into this batch (see Linger).
				sleep(ctx, r.linger)
			}
			// Woken by Add's commits alone, the relay finds their rows in memory and
			// reads the table only if one is missing there (a wake for rows it has taken
			// already then costs no read); after Notify, it reads the table.
			drain = r.cursor && !r.o.told.Swap(false)
		case <-time.After(r.poll):
		}
	}
}

// start returns where reading starts after a rewind: the recorded cursor on SQLite, zero
// on PostgreSQL.
func (r *Relay) start(ctx context.Context) (int64, error) {
	if !r.cursor {
		return 0, nil
	}
	var seq int64
	if err := r.o.st.ReadDB().QueryRowContext(ctx, r.qCursor, leaseName).Scan(&seq); err != nil {
		return 0, fmt.Errorf("outbox: read cursor: %w", err)
	}
	return seq, nil
}

// purge deletes the events sent longer than the retention ago (on SQLite: added longer
// ago, and at or below the cursor).
func (r *Relay) purge(ctx context.Context) error {
	args := []any{time.Now().Add(-r.retention).UnixNano()}
	if r.cursor {
		args = append([]any{leaseName}, args...)
	}
	_, err := r.o.st.DB().ExecContext(ctx, r.qPurge, args...)
	return err
}

// batch is events read from the outbox, with their sequence numbers.
type batch struct {
	msgs   []*pubsub.Message
	seqs   []int64
	memory bool // taken from the rows Add committed, not read from the table
}

// read reads the oldest unsent events above cursor, up to a batch. On SQLite it takes
// them from the rows that Add committed (Outbox.recent) when the next ones are there, and
// reads the table otherwise, unless drain: then, when every row Add committed has been
// taken and none was left out, there is nothing to read before the next notification
// (rows written outside Add are found at the poll, as always).
func (r *Relay) read(ctx context.Context, cursor int64, drain bool) (batch, error) {
	var b batch
	if r.cursor {
		// The rows that Add wrote and that committed, if the next ones are in memory.
		rows := r.o.recent.take(cursor, r.batch)
		if len(rows) == 0 && drain && r.o.recent.complete() {
			return b, nil
		}
		if len(rows) > 0 {
			// The batch's messages in one array, not an allocation each.
			ms := make([]pubsub.Message, len(rows))
			b.msgs, b.seqs = make([]*pubsub.Message, len(rows)), make([]int64, len(rows))
			for i := range rows {
				rw := &rows[i]
				if err := decodeInto(&ms[i], rw.id, rw.subject, rw.key, rw.payload, rw.headers, rw.created); err != nil {
					return batch{}, err
				}
				b.msgs[i], b.seqs[i] = &ms[i], rw.seq
			}
			b.memory = true
			return b, nil
		}
	}
	var drops uint64
	if r.cursor {
		drops = r.o.recent.dropCount()
	}
	defer r.tableReads.Add(1) // once the read is over
	rows, err := r.o.st.ReadDB().QueryContext(ctx, r.qSelect, cursor, r.batch)
	if err != nil {
		return b, fmt.Errorf("outbox: read: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq, created int64
		var id, subject, key, headers string
		var payload []byte
		if err := rows.Scan(&seq, &id, &subject, &key, &payload, &headers, &created); err != nil {
			return batch{}, fmt.Errorf("outbox: read: %w", err)
		}
		m, err := decode(id, subject, key, payload, headers, created)
		if err != nil {
			return batch{}, err
		}
		b.msgs, b.seqs = append(b.msgs, m), append(b.seqs, seq)
	}
	if err := rows.Err(); err != nil {
		return batch{}, fmt.Errorf("outbox: read: %w", err)
	}
	if r.cursor && len(b.seqs) < r.batch {
		r.o.recent.drained(drops)
	}
	return b, nil
}

// mark marks the events with sequence numbers seqs sent. On SQLite, whose single writer
// commits rows in sequence order, the cursor moves to the last of them; on PostgreSQL,
// where a later sequence number can commit first, the rows of the list are marked.
func (r *Relay) mark(ctx context.Context, seqs []int64) error {
	last := seqs[len(seqs)-1]
	// Through InTx, so that on SQLite the update shares a group commit with producers.
	err := r.o.st.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if r.cursor {
			_, err = tx.ExecContext(ctx, r.qAdvance, last, leaseName, last, leaseName, r.owner)
		} else {
			_, err = tx.ExecContext(ctx, r.qMarkAny, time.Now().UnixNano(), seqs)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("outbox: mark sent: %w", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
