// Package idempotency makes retried requests and redelivered messages take effect once.
//
// For endpoints, [Middleware] reads the key the caller sends (the Idempotency-Key HTTP
// header or "idempotency-key" gRPC metadata, or a key put in the context with [WithKey]),
// claims it in a [Store], runs the endpoint, and stores the result. A repeated request
// with the same key gets the stored result replayed without running the endpoint again; a
// repeat that arrives while the first is still running waits for its result, up to a
// bound, and then fails with an Aborted error; a repeat with a different request body
// fails with InvalidArgument. Records expire after a TTL.
//
// For message consumers, [Once] records a message id in the same transaction as the
// consumer's own writes, so that at-least-once delivery has exactly-once effects.
//
// Stores: [Memory] for one process and tests, [SQL] on the service's store (table
// idempotency_keys).
package idempotency

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"time"
)

// State is the state of a key's record.
type State string

// The states of a record.
const (
	// InProgress: a request with the key runs now.
	InProgress State = "in_progress"
	// Completed: the result is stored.
	Completed State = "completed"
)

// The kinds of stored results.
const (
	KindResponse = "response" // Response holds the encoded response
	KindError    = "error"    // Response holds an encoded svcerr error
	KindMessage  = "message"  // a message id recorded by Once; no response
)

// Record is what a Store keeps for one key.
type Record struct {
	Scope       string
	Key         string
	State       State
	Fingerprint string // a hash of the request, to tell a repeat from a different request
	Response    []byte
	Kind        string // KindResponse, KindError or KindMessage once Completed
	// Claim identifies the Begin that created the record: a new random id for each
	// successful Begin. Complete and Release take it, so that a request whose claim
	// expired and was taken over settles nothing of the request that took it over.
	Claim     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ErrClaimLost is returned by Complete when the record of the key is no longer the
// InProgress record of the given claim: the claim expired and another request claimed
// the key (or it was completed or released). The result is not stored.
var ErrClaimLost = errors.New("idempotency: the claim on the key was lost")

// NewClaimID returns a new random claim id, for Store implementations' Begin.
func NewClaimID() string { return rand.Text() }

// Store keeps idempotency records. Keys are unique within a scope (one endpoint, one
// consumer). Expired records count as absent.
type Store interface {
	// Get returns the live record of (scope, key), and false when there is none.
	Get(ctx context.Context, scope, key string) (Record, bool, error)
	// Begin claims (scope, key): when no live record exists, it creates an InProgress
	// record with a new Claim id that expires after lockTTL and returns it with true.
	// Otherwise it returns the live record and false. It is atomic: of concurrent calls,
	// one gets true.
	Begin(ctx context.Context, scope, key, fingerprint string, lockTTL time.Duration) (Record, bool, error)
	// Complete stores the result of (scope, key) and keeps it for ttl, if the record is
	// still the InProgress record of claim (the Claim Begin returned), expired or not;
	// otherwise it changes nothing and returns ErrClaimLost.
	Complete(ctx context.Context, scope, key, claim, kind string, response []byte, ttl time.Duration) error
	// Release deletes the InProgress record of (scope, key) if it is still that of
	// claim, so that a repeat runs again. Otherwise it changes nothing and returns nil:
	// a newer claim, or a result, stays.
	Release(ctx context.Context, scope, key, claim string) error
}

// Memory is a Store in memory, for one process and for tests. The zero Memory is not
// usable; call NewMemory.
type Memory struct {
	mu  sync.Mutex
	m   map[[2]string]Record
	now func() time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return &Memory{m: map[[2]string]Record{}, now: time.Now} }

func (m *Memory) live(k [2]string) (Record, bool) {
	r, ok := m.m[k]
	if ok && !m.now().Before(r.ExpiresAt) {
		delete(m.m, k)
		return Record{}, false
	}
	return r, ok
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, scope, key string) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.live([2]string{scope, key})
	return r, ok, nil
}

// Begin implements Store.
func (m *Memory) Begin(_ context.Context, scope, key, fingerprint string, lockTTL time.Duration) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{scope, key}
	if r, ok := m.live(k); ok {
		return r, false, nil
	}
	now := m.now()
	r := Record{Scope: scope, Key: key, State: InProgress, Fingerprint: fingerprint, Claim: NewClaimID(), CreatedAt: now, ExpiresAt: now.Add(lockTTL)}
	m.m[k] = r
	return r, true, nil
}

// Complete implements Store.
func (m *Memory) Complete(_ context.Context, scope, key, claim, kind string, response []byte, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{scope, key}
	r, ok := m.m[k]
	if !ok || r.State != InProgress || r.Claim != claim {
		return ErrClaimLost
	}
	r.State, r.Kind, r.Response, r.ExpiresAt = Completed, kind, append([]byte(nil), response...), m.now().Add(ttl)
	m.m[k] = r
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, scope, key, claim string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{scope, key}
	if r, ok := m.m[k]; ok && r.State == InProgress && r.Claim == claim {
		delete(m.m, k)
	}
	return nil
}

// Purge deletes expired records.
func (m *Memory) Purge() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	now := m.now()
	for k, r := range m.m {
		if !now.Before(r.ExpiresAt) {
			delete(m.m, k)
			n++
		}
	}
	return n
}
