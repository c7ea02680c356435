package outbox

import (
	"slices"
	"sync"
	"sync/atomic"
)

// The rows that Add wrote in transactions that have since committed, kept in memory so
// that the relay can publish them without reading them back from the table (SQLite
// only). The table stays the truth: the relay takes rows from here only as a run that
// starts right after its cursor and has no gap, so a row it does not find here (written
// outside Add, by another process, or not recorded because the queue was full) makes it
// read the table as before. On SQLite, whose single writer hands out sequence numbers in
// commit order, every row below a committed one has committed too, so a run without a
// gap that starts at cursor+1 is exactly what the table would return.

// Rows are kept only while a relay of the Outbox holds the lease in this process: a
// process whose relay runs elsewhere, or waits for the lease, keeps none.

// maxRecentRows and maxRecentBytes bound the rows kept in memory; past them, Add records
// no more until the relay has taken some, and the relay reads the table instead.
const (
	maxRecentRows  = 16384
	maxRecentBytes = 32 << 20
)

// row is one outbox row as Add wrote it.
type row struct {
	seq     int64
	id      string
	subject string
	key     string
	payload []byte
	headers string
	created int64
}

// size is what r holds in memory, roughly.
func (r *row) size() int {
	return len(r.id) + len(r.subject) + len(r.key) + len(r.payload) + len(r.headers) + 64
}

// recent is the committed rows, sorted by sequence number.
type recent struct {
	on     atomic.Bool // a relay holds the lease; Add records rows only then
	mu     sync.Mutex
	relays int // relays holding the lease (one, unless several share an owner)
	rows   []row
	bytes  int
	taken  int // rows handed to the relay, for tests
	// drops counts the rows push did not record (the queue was full); seen is the count
	// the relay had when it last read the table to its end. While they are equal, every
	// row that Add committed is here or published.
	drops, seen uint64
	limit       int // rows kept at most; 0 is maxRecentRows (tests set less)
}

// push records rows of a transaction that has committed. Transactions' hooks run in
// their callers' goroutines, so rows arrive out of order: each is inserted in its place.
// Rows past the bounds are not recorded.
func (q *recent) push(rows []row) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.relays == 0 { // the relay stopped since Add checked
		return
	}
	for _, r := range rows {
		limit := q.limit
		if limit <= 0 {
			limit = maxRecentRows
		}
		if len(q.rows) >= limit || q.bytes+r.size() > maxRecentBytes {
			q.drops++
			continue
		}
		i := len(q.rows)
		for i > 0 && q.rows[i-1].seq > r.seq {
			i--
		}
		if i > 0 && q.rows[i-1].seq == r.seq {
			continue
		}
		q.rows = slices.Insert(q.rows, i, r)
		q.bytes += r.size()
	}
}

// start records that a relay holds the lease: Add records rows from now on.
func (q *recent) start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.relays++
	q.on.Store(true)
}

// stop records that a relay let go of the lease; when none holds it, the rows are
// dropped and Add records no more.
func (q *recent) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.relays--; q.relays > 0 {
		return
	}
	q.relays = 0
	q.on.Store(false)
	q.consume(len(q.rows))
	q.bytes = 0
}

// complete reports whether every row that Add committed and the relay has not published
// is here: none was left out since the table was last read to its end (see drained).
// The caller has just taken what there was.
func (q *recent) complete() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.rows) == 0 && q.drops == q.seen
}

// drops returns the count of rows left out so far; pass it to drained once a read of the
// table that started after this call has reached its end.
func (q *recent) dropCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.drops
}

// drained records that the table was read to its end after n rows had been left out.
func (q *recent) drained(n uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seen = max(q.seen, n)
}

// take removes and returns the rows from cursor+1 on without a gap, up to limit, and
// forgets the rows at or below cursor (the relay has published them). It returns nil
// when the row after cursor is not here.
func (q *recent) take(cursor int64, limit int) []row {
	q.mu.Lock()
	defer q.mu.Unlock()
	drop := 0
	for drop < len(q.rows) && q.rows[drop].seq <= cursor {
		q.bytes -= q.rows[drop].size()
		drop++
	}
	q.consume(drop)
	if len(q.rows) == 0 || q.rows[0].seq != cursor+1 {
		return nil
	}
	n := 1
	for n < len(q.rows) && n < limit && q.rows[n].seq == q.rows[n-1].seq+1 {
		n++
	}
	out := slices.Clone(q.rows[:n])
	q.taken += n
	for i := range n {
		q.bytes -= q.rows[i].size()
	}
	q.consume(n)
	return out
}

// consume removes the first n rows, letting go of their payloads; the rest move to the
// front, so the array is reused.
func (q *recent) consume(n int) {
	if n == 0 {
		return
	}
	m := copy(q.rows, q.rows[n:])
	clear(q.rows[m:])
	q.rows = q.rows[:m]
	if m == 0 {
		q.bytes = 0
	}
}

// len returns how many rows are kept.
func (q *recent) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.rows)
}
