package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/svckit/svckit/store"
)

// openGroupTable opens a SQLite store at path with a table t (id INTEGER PRIMARY KEY).
func openGroupTable(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestGroupCommitOutcomes runs many concurrent InTx calls on SQLite, where they share
// group commits, each of them ending in one way (committed, failed, panicking, its context
// cancelled before the call), and checks that each caller gets its own outcome, that a
// failing or panicking function costs no other caller its commit, and that exactly the
// committed rows are in the table, their AfterCommit hooks run once in their own callers.
func TestGroupCommitOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(id int) func(tx *sql.Tx) error
		ctx     func() context.Context
		wantErr string // "" commits; "panic: …" panics in the caller
		stored  bool
	}{
		{name: "commits", stored: true, fn: func(id int) func(tx *sql.Tx) error {
			return func(tx *sql.Tx) error {
				_, err := tx.Exec("INSERT INTO t (id) VALUES (?)", id)
				return err
			}
		}},
		{name: "fails", wantErr: "refused", fn: func(id int) func(tx *sql.Tx) error {
			return func(tx *sql.Tx) error {
				if _, err := tx.Exec("INSERT INTO t (id) VALUES (?)", id); err != nil {
					return err
				}
				return errors.New("refused")
			}
		}},
		{name: "panics", wantErr: "panic: boom", fn: func(id int) func(tx *sql.Tx) error {
			return func(tx *sql.Tx) error {
				if _, err := tx.Exec("INSERT INTO t (id) VALUES (?)", id); err != nil {
					return err
				}
				panic("boom")
			}
		}},
		{name: "cancelled", wantErr: context.Canceled.Error(), ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, fn: func(id int) func(tx *sql.Tx) error {
			return func(tx *sql.Tx) error {
				_, err := tx.Exec("INSERT INTO t (id) VALUES (?)", id)
				return err
			}
		}},
	}
	s := openGroupTable(t, filepath.Join(t.TempDir(), "g.db"))
	defer s.Close()
	const rounds = 40
	var wg sync.WaitGroup
	type result struct {
		kind, id int
		err      string
		hooks    int
	}
	results := make(chan result, rounds*len(tests))
	for i := range rounds {
		for k, tc := range tests {
			id := i*len(tests) + k
			wg.Go(func() {
				ctx := context.Background()
				if tc.ctx != nil {
					ctx = tc.ctx()
				}
				res := result{kind: k, id: id}
				func() {
					defer func() {
						if p := recover(); p != nil {
							res.err = fmt.Sprint("panic: ", p)
						}
					}()
					fn := tc.fn(id)
					if err := s.InTx(ctx, func(tx *sql.Tx) error {
						res.hooks = 0 // the function may run more than once
						s.AfterCommit(tx, func() { res.hooks++ })
						return fn(tx)
					}); err != nil {
						res.err = err.Error()
					}
				}()
				results <- res
			})
		}
	}
	wg.Wait()
	close(results)
	for r := range results {
		tc := tests[r.kind]
		if (tc.wantErr == "") != (r.err == "") || !strings.Contains(r.err, tc.wantErr) {
			t.Errorf("%s %d: error %q, want %q", tc.name, r.id, r.err, tc.wantErr)
		}
		wantHooks := 0
		if tc.stored {
			wantHooks = 1
		}
		if r.hooks != wantHooks {
			t.Errorf("%s %d: %d hooks ran, want %d", tc.name, r.id, r.hooks, wantHooks)
		}
		var n int
		if err := s.DB().QueryRow("SELECT COUNT(*) FROM t WHERE id = ?", r.id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if (n == 1) != tc.stored {
			t.Errorf("%s %d: %d rows stored", tc.name, r.id, n)
		}
	}
}

// TestGroupCommitClose closes a SQLite store while callers keep calling InTx: each call
// either commits (its row is there) or fails with the store's closed error; none hangs,
// and calls after Close fail at once. A second Close returns. The file, opened again,
// holds exactly the rows whose InTx returned nil.
func TestGroupCommitClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s := openGroupTable(t, path)
	const callers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	committed := map[int]bool{}
	started := make(chan struct{}, callers)
	for c := range callers {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := c*1_000_000 + i
				err := s.InTx(context.Background(), func(tx *sql.Tx) error {
					_, err := tx.Exec("INSERT INTO t (id) VALUES (?)", id)
					return err
				})
				if i == 0 {
					started <- struct{}{}
				}
				if err != nil {
					if !strings.Contains(err.Error(), "store: closed") {
						t.Errorf("InTx: %v, want the closed error", err)
					}
					return
				}
				mu.Lock()
				committed[id] = true
				mu.Unlock()
			}
		})
	}
	for range callers {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := s.InTx(context.Background(), func(*sql.Tx) error { return nil }); err == nil || !strings.Contains(err.Error(), "store: closed") {
		t.Fatalf("InTx after Close: %v, want the closed error", err)
	}
	_ = s.Close()
	if len(committed) == 0 {
		t.Fatal("no transaction committed before Close")
	}
	s = openGroupTable(t, path)
	defer s.Close()
	var n int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(committed) {
		t.Fatalf("%d rows in the file, %d InTx calls returned nil", n, len(committed))
	}
}
