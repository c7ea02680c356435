package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
)

// maxGroup bounds how many transactions one SQLite commit carries.
const maxGroup = 128

// txReq is one InTx call: its function, the hooks it registered, and its result.
type txReq struct {
	ctx   context.Context
	fn    func(tx *sql.Tx) error
	hooks []func()
	err   error
	panic any
	// wake receives one signal when the request's group has ended (err, panic and
	// hooks are set).
	wake chan struct{}
}

// errClosed is returned by InTx on a closed Store.
var errClosed = errors.New("store: closed")

// grouped queues fn and waits for its group to commit. A caller that finds no commit
// under way leads: it commits the waiting functions, its own among them, in its own
// goroutine, so a caller alone on an idle store needs no hand-off to a writer goroutine
// and back (two wake-ups of another goroutine, often of another thread, per
// transaction). When its own function has committed and others wait, the leader hands
// the rest to a writer goroutine (drain), which commits groups until none waits: under
// load, groups follow one another in one goroutine, as they would with a writer that
// runs all the time.
func (s *Store) grouped(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &txReq{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)}
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return errClosed
	}
	s.queue = append(s.queue, req)
	leads := !s.leading
	s.leading = true
	s.qmu.Unlock()
	if leads {
		s.lead(req)
	} else {
		<-req.wake
	}
	if req.panic != nil {
		panic(req.panic)
	}
	if req.err != nil {
		return req.err
	}
	for _, h := range req.hooks {
		h()
	}
	return nil
}

// lead commits the queued functions in groups, holding the lead (Store.leading), until
// own's group has ended, or, with own nil (drain), until none is queued. A leader whose
// own has committed while others wait hands the lead to a new drain goroutine; at the
// end, the lead ends (or, when the store is closing, Close is told). If it is left by a
// panic (the driver's: a function's own panic is caught), the group under way fails and
// the lead goes on all the same, so that no caller waits for ever.
func (s *Store) lead(own *txReq) {
	var batch []*txReq
	ended := false // the lead ended under qmu, as the queue was seen empty
	defer func() {
		p := recover()
		if p != nil {
			for _, r := range batch {
				r.err, r.panic, r.hooks = errors.New("store: the group commit failed"), nil, nil
				if r != own {
					r.wake <- struct{}{}
				}
			}
		}
		if !ended {
			s.qmu.Lock()
			switch {
			case s.closing:
				s.leading = false
				s.qmu.Unlock()
				s.idle <- struct{}{}
			case len(s.queue) > 0:
				s.qmu.Unlock()
				go s.lead(nil)
			default:
				s.leading = false
				s.qmu.Unlock()
			}
		}
		if p != nil {
			panic(p)
		}
	}()
	for {
		// Let callers that are ready to run queue their transactions too: on a busy
		// machine, this one yield makes groups several times larger.
		runtime.Gosched()
		s.qmu.Lock()
		if s.closing {
			s.qmu.Unlock()
			return // Close took own, if any, from the queue and failed it (under qmu)
		}
		n := min(len(s.queue), maxGroup)
		if n == 0 { // only a drain finds none: own is queued until its group
			s.leading, ended = false, true
			s.qmu.Unlock()
			return
		}
		batch = append(s.batch[:0], s.queue[:n]...)
		rest := copy(s.queue, s.queue[n:])
		clear(s.queue[rest:])
		s.queue = s.queue[:rest]
		s.qmu.Unlock()
		s.commitGroup(batch)
		mine := false
		for _, r := range batch {
			if r == own {
				mine = true
				continue
			}
			r.wake <- struct{}{}
		}
		clear(batch)
		s.batch, batch = batch[:0], nil
		if mine {
			return
		}
	}
}

// closeGroup fails the queued transactions and waits for the group under way, if any,
// to end; no group commits after it returns.
func (s *Store) closeGroup() {
	s.qmu.Lock()
	if s.closing {
		s.qmu.Unlock()
		return
	}
	s.closing = true
	queued := s.queue
	s.queue = nil
	leading := s.leading
	for _, r := range queued {
		r.err = errClosed
	}
	s.qmu.Unlock()
	// A leader's own request may be among them: a signal it does not read is left in
	// its buffer, and the leader finds the store closing and its request failed.
	for _, r := range queued {
		r.wake <- struct{}{}
	}
	if leading {
		<-s.idle
	}
}

// commitGroup runs the functions of batch one after another in one transaction and
// commits once. If a function fails, the transaction is rolled back and the others run
// again, without it, in a new transaction: InTx's contract (fn has no effects outside tx
// and may run more than once) makes that safe, and it spares the savepoint statements
// that would otherwise cost every transaction in the common case where all succeed. A
// request's err is set when its function failed or the group could not commit.
func (s *Store) commitGroup(batch []*txReq) {
	live := s.live[:0] // the leader's, as batch is
	defer func() { clear(live[:cap(live)]); s.live = live[:0] }()
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		live = append(live, r)
	}
	for len(live) > 0 {
		tx, err := s.write.BeginTx(context.Background(), nil)
		if err != nil {
			fail(live, fmt.Errorf("store: begin: %w", err))
			return
		}
		failed := -1
		for i, r := range live {
			r.hooks = nil
			s.mu.Lock()
			s.current[tx] = r
			s.mu.Unlock()
			r.err, r.panic = call(r.fn, tx)
			s.mu.Lock()
			delete(s.current, tx)
			s.mu.Unlock()
			if r.err != nil || r.panic != nil {
				failed = i
				break
			}
		}
		if failed < 0 {
			if err := tx.Commit(); err != nil {
				_ = tx.Rollback()
				fail(live, fmt.Errorf("store: commit: %w", err))
			}
			return
		}
		_ = tx.Rollback()
		// The failed function keeps its result; the ones before it run again, those
		// after it had not run yet.
		live[failed].hooks = nil
		live = append(live[:failed:failed], live[failed+1:]...)
	}
}

// fail gives every request of reqs err.
func fail(reqs []*txReq, err error) {
	for _, r := range reqs {
		r.err, r.panic, r.hooks = err, nil, nil
	}
}

// call runs fn, turning a panic into a value that InTx raises again in the caller's
// goroutine.
func call(fn func(tx *sql.Tx) error, tx *sql.Tx) (err error, p any) {
	defer func() {
		if r := recover(); r != nil {
			p = r
		}
	}()
	return fn(tx), nil
}
