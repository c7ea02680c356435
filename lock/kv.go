package lock

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/jsx"
)

// KV is a Backend that keeps locks as keys of a NATS JetStream key-value bucket. The
// fencing token is the revision of the key when it was acquired: revisions only grow, so
// a later acquisition always has a greater one. Renewals are compare-and-set updates of
// the key on its last revision. Expiry uses the holders' clocks, which should agree to
// well within a TTL.
type KV struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

var _ Backend = (*KV)(nil)

// NewKV returns a Backend on the bucket kv; [KVBucket] makes a suitable one.
func NewKV(kv jetstream.KeyValue) *KV { return &KV{kv: kv, now: time.Now} }

// undelivered runs op again while it fails with "no responders": the request reached no
// stream leader (one is being elected, as after a node restarts), so it did nothing and
// can safely be repeated. Other errors, timeouts included, are returned at once: a
// request that timed out may have been applied.
func undelivered(ctx context.Context, op func() error) error {
	pause := 20 * time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := op()
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

// KVBucket creates the bucket named bucket for locks, or returns it if it exists.
func KVBucket(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	kv, err := jsx.CreateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: bucket, History: 1, Description: "svckit locks"})
	if err != nil {
		return nil, fmt.Errorf("lock: bucket %s: %w", bucket, err)
	}
	return kv, nil
}

type kvRecord struct {
	Holder  string `json:"holder"`
	Expires int64  `json:"expires"` // unix nanoseconds
}

// Acquire implements Backend.
func (k *KV) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (Grant, bool, error) {
	key := kvKey(name)
	val, _ := json.Marshal(kvRecord{Holder: holder, Expires: k.now().Add(ttl).UnixNano()})
	var e jetstream.KeyValueEntry
	err := undelivered(ctx, func() (err error) { e, err = k.kv.Get(ctx, key); return err })
	var rev uint64
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		err = undelivered(ctx, func() (err error) { rev, err = k.kv.Create(ctx, key, val); return err })
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Grant{}, false, nil
		}
	case err != nil:
	default:
		var r kvRecord
		if json.Unmarshal(e.Value(), &r) == nil && r.Holder != "" && r.Expires >= k.now().UnixNano() {
			return Grant{}, false, nil
		}
		err = undelivered(ctx, func() (err error) { rev, err = k.kv.Update(ctx, key, val, e.Revision()); return err })
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return Grant{}, false, nil
		}
	}
	if err != nil {
		return Grant{}, false, fmt.Errorf("lock: acquire %s: %w", name, err)
	}
	return Grant{Name: name, Holder: holder, Token: rev, Version: rev}, true, nil
}

// Renew implements Backend.
func (k *KV) Renew(ctx context.Context, g Grant, ttl time.Duration) (Grant, error) {
	val, _ := json.Marshal(kvRecord{Holder: g.Holder, Expires: k.now().Add(ttl).UnixNano()})
	var rev uint64
	err := undelivered(ctx, func() (err error) { rev, err = k.kv.Update(ctx, kvKey(g.Name), val, g.Version); return err })
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return g, ErrLost
	}
	if err != nil {
		return g, fmt.Errorf("lock: renew %s: %w", g.Name, err)
	}
	g.Version = rev
	return g, nil
}

// Release implements Backend.
func (k *KV) Release(ctx context.Context, g Grant) error {
	err := undelivered(ctx, func() error { return k.kv.Delete(ctx, kvKey(g.Name), jetstream.LastRevision(g.Version)) })
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return nil // taken over already
		}
		return err
	}
	return nil
}

var validKey = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$`)

// kvKey returns name as a valid KV key: name itself when it is one, else a base64 form.
func kvKey(name string) string {
	if validKey.MatchString(name) && !strings.HasPrefix(name, "_b64.") {
		return name
	}
	return "_b64." + base64.RawURLEncoding.EncodeToString([]byte(name))
}
