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
	done  chan struct{}
}

// errClosed is returned by InTx on a closed Store.
var errClosed = errors.New("store: closed")

// grouped hands fn to the writer goroutine and waits for its group to commit.
func (s *Store) grouped(ctx context.Context, fn func(tx *sql.Tx) error) error {
	req := &txReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case s.group <- req:
	case <-s.closed:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-req.done
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

// writer runs the SQLite group commits until the Store closes.
func (s *Store) writer() {
	batch := make([]*txReq, 0, maxGroup)
	for {
		select {
		case <-s.closed:
			// Fail whatever is still queued.
			for {
				select {
				case r := <-s.group:
					r.err = errClosed
					close(r.done)
				default:
					return
				}
			}
		case r := <-s.group:
			batch = append(batch[:0], r)
		}
		// Let callers that are ready to run queue their transactions too: on a busy
		// machine, this one yield makes groups several times larger.
		runtime.Gosched()
	more:
		for len(batch) < maxGroup {
			select {
			case r := <-s.group:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commitGroup(batch)
		for _, r := range batch {
			close(r.done)
		}
	}
}

// commitGroup runs the functions of batch one after another in one transaction and
// commits once. If a function fails, the transaction is rolled back and the others run
// again, without it, in a new transaction: InTx's contract (fn has no effects outside tx
// and may run more than once) makes that safe, and it spares the savepoint statements
// that would otherwise cost every transaction in the common case where all succeed. A
// request's err is set when its function failed or the group could not commit.
func (s *Store) commitGroup(batch []*txReq) {
	live := make([]*txReq, 0, len(batch))
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
