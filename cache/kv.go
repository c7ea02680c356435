package cache

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/jsx"
)

// KV is a Backend on a NATS JetStream key-value bucket, shared by the replicas of a
// service. Values are stored as JSON with their expiry time; the bucket's MaxAge
// (see KVBucket) removes entries that nobody reads again. It is a [VersionedBackend]:
// the version of a key is its revision in the bucket, and Delete writes an expired entry
// (a tombstone) instead of removing the key, so that the key's revision grows and a load
// that began before the Delete, in any replica, cannot write its result after it.
type KV[K comparable, V any] struct {
	kv      jetstream.KeyValue
	keyFunc func(K) string
}

var _ VersionedBackend[string, int] = (*KV[string, int])(nil)

// KVOption configures NewKV.
type KVOption[K comparable] func(*kvOptions[K])

type kvOptions[K comparable] struct{ keyFunc func(K) string }

// WithKeyFunc sets how keys become strings; default fmt.Sprint. Strings that are not
// valid KV keys are stored base64-encoded.
func WithKeyFunc[K comparable](fn func(K) string) KVOption[K] {
	return func(o *kvOptions[K]) { o.keyFunc = fn }
}

// NewKV returns a Backend on the bucket kv.
func NewKV[K comparable, V any](kv jetstream.KeyValue, opts ...KVOption[K]) *KV[K, V] {
	o := kvOptions[K]{keyFunc: func(k K) string { return fmt.Sprint(k) }}
	for _, fn := range opts {
		fn(&o)
	}
	return &KV[K, V]{kv: kv, keyFunc: o.keyFunc}
}

// KVBucket creates the bucket named bucket whose entries are removed maxAge after they
// were written (set it to at least the cache's TTL plus jitter), or returns it if it
// exists.
func KVBucket(ctx context.Context, js jetstream.JetStream, bucket string, maxAge time.Duration) (jetstream.KeyValue, error) {
	kv, err := jsx.CreateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: bucket, History: 1, TTL: maxAge, Description: "svckit cache"})
	if err != nil {
		return nil, fmt.Errorf("cache: bucket %s: %w", bucket, err)
	}
	return kv, nil
}

type kvEntry[V any] struct {
	Value    V     `json:"v"`
	NotFound bool  `json:"nf,omitempty"`
	Expires  int64 `json:"exp"`
}

// Get implements Backend.
func (b *KV[K, V]) Get(ctx context.Context, key K) (Entry[V], bool, error) {
	e, ok, _, err := b.GetVersion(ctx, key)
	return e, ok, err
}

// GetVersion implements VersionedBackend: the version is the key's revision, 0 when the
// bucket has no entry for it.
func (b *KV[K, V]) GetVersion(ctx context.Context, key K) (Entry[V], bool, uint64, error) {
	e, err := b.kv.Get(ctx, kvKey(b.keyFunc(key)))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Entry[V]{}, false, 0, nil
	}
	if err != nil {
		return Entry[V]{}, false, 0, fmt.Errorf("cache: get: %w", err)
	}
	var ke kvEntry[V]
	if err := json.Unmarshal(e.Value(), &ke); err != nil {
		return Entry[V]{}, false, e.Revision(), fmt.Errorf("cache: decode: %w", err)
	}
	exp := time.Unix(0, ke.Expires)
	if !time.Now().Before(exp) {
		return Entry[V]{}, false, e.Revision(), nil
	}
	return Entry[V]{Value: ke.Value, NotFound: ke.NotFound, Expires: exp}, true, e.Revision(), nil
}

func encode[V any](e Entry[V]) ([]byte, error) {
	exp := int64(0)
	if !e.Expires.IsZero() {
		exp = e.Expires.UnixNano()
	}
	data, err := json.Marshal(kvEntry[V]{Value: e.Value, NotFound: e.NotFound, Expires: exp})
	if err != nil {
		return nil, fmt.Errorf("cache: encode: %w", err)
	}
	return data, nil
}

// Set implements Backend.
func (b *KV[K, V]) Set(ctx context.Context, key K, e Entry[V]) error {
	data, err := encode(e)
	if err != nil {
		return err
	}
	if _, err := b.kv.Put(ctx, kvKey(b.keyFunc(key)), data); err != nil {
		return fmt.Errorf("cache: set: %w", err)
	}
	return nil
}

// SetIfVersion implements VersionedBackend with a compare-and-set on the key's revision
// (a create when ver is 0).
func (b *KV[K, V]) SetIfVersion(ctx context.Context, key K, e Entry[V], ver uint64) (bool, error) {
	data, err := encode(e)
	if err != nil {
		return false, err
	}
	k := kvKey(b.keyFunc(key))
	if ver == 0 {
		_, err = b.kv.Create(ctx, k, data)
	} else {
		_, err = b.kv.Update(ctx, k, data, ver)
	}
	if conflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache: set: %w", err)
	}
	return true, nil
}

// conflict reports whether err says a compare-and-set found another revision.
func conflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Delete implements Backend: it writes a tombstone (an expired entry), which Get reports
// as missing and which raises the key's revision; the bucket's MaxAge removes it.
func (b *KV[K, V]) Delete(ctx context.Context, key K) error {
	data, err := encode(Entry[V]{})
	if err != nil {
		return err
	}
	if _, err := b.kv.Put(ctx, kvKey(b.keyFunc(key)), data); err != nil {
		return fmt.Errorf("cache: delete: %w", err)
	}
	return nil
}

var validKey = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$`)

// kvKey returns s as a valid KV key: s itself when it is one, else a base64 form.
func kvKey(s string) string {
	if validKey.MatchString(s) && !strings.HasPrefix(s, "_b64.") {
		return s
	}
	return "_b64." + base64.RawURLEncoding.EncodeToString([]byte(s))
}
