package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/internal/jsx"
)

// KV is a Claimer on a NATS JetStream key-value bucket: a claim is the key
// "JOB.TICK" (TICK in Unix nanoseconds) created with Create, which fails when the key
// exists. The key "JOB._last" holds the latest claimed tick. The bucket's MaxAge expires
// old claims; keep it longer than the longest interval of any job, or a restarted
// scheduler cannot tell which ticks it missed.
type KV struct{ kv jetstream.KeyValue }

var _ Claimer = (*KV)(nil)

// NewKV returns a Claimer on kv; [KVBucket] makes a suitable bucket.
func NewKV(kv jetstream.KeyValue) *KV { return &KV{kv: kv} }

// KVBucket creates the bucket named bucket for claims, kept for maxAge (0: a week), or
// returns it if it exists.
func KVBucket(ctx context.Context, js jetstream.JetStream, bucket string, maxAge time.Duration) (jetstream.KeyValue, error) {
	if maxAge <= 0 {
		maxAge = 7 * 24 * time.Hour
	}
	kv, err := jsx.CreateKeyValue(ctx, js, jetstream.KeyValueConfig{Bucket: bucket, History: 1, TTL: maxAge, Description: "svckit schedule claims"})
	if err != nil {
		return nil, fmt.Errorf("schedule: bucket %s: %w", bucket, err)
	}
	return kv, nil
}

type kvClaim struct {
	Holder   string `json:"holder"`
	Claimed  int64  `json:"claimed"`
	Finished int64  `json:"finished,omitempty"`
	Error    string `json:"error,omitempty"`
}

func tickKey(job string, tick time.Time) string {
	return job + "." + strconv.FormatInt(tick.UnixNano(), 10)
}

// Claim implements Claimer.
func (k *KV) Claim(ctx context.Context, job string, tick time.Time, holder string) (bool, error) {
	val, _ := json.Marshal(kvClaim{Holder: holder, Claimed: time.Now().UnixNano()})
	_, err := k.kv.Create(ctx, tickKey(job, tick), val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("schedule: claim %s: %w", job, err)
	}
	return true, k.setLast(ctx, job, tick)
}

// setLast raises JOB._last to tick.
func (k *KV) setLast(ctx context.Context, job string, tick time.Time) error {
	key := job + "._last"
	val := []byte(strconv.FormatInt(tick.UnixNano(), 10))
	for {
		e, err := k.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err = k.kv.Create(ctx, key, val); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			return err
		}
		if err != nil {
			return err
		}
		if cur, err := strconv.ParseInt(string(e.Value()), 10, 64); err == nil && cur >= tick.UnixNano() {
			return nil
		}
		_, err = k.kv.Update(ctx, key, val, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		return err
	}
}

// Finish implements Claimer.
func (k *KV) Finish(ctx context.Context, job string, tick time.Time, runErr error) error {
	key := tickKey(job, tick)
	e, err := k.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	var c kvClaim
	_ = json.Unmarshal(e.Value(), &c)
	c.Finished = time.Now().UnixNano()
	if runErr != nil {
		c.Error = runErr.Error()
	}
	val, _ := json.Marshal(c)
	_, err = k.kv.Update(ctx, key, val, e.Revision())
	return err
}

// Last implements Claimer.
func (k *KV) Last(ctx context.Context, job string) (time.Time, bool, error) {
	e, err := k.kv.Get(ctx, job+"._last")
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule: last %s: %w", job, err)
	}
	n, err := strconv.ParseInt(string(e.Value()), 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule: last %s: %w", job, err)
	}
	return time.Unix(0, n), true, nil
}
