// Package natskv is the default discovery backend: a registry in a NATS JetStream
// key-value bucket. It works with the NATS server that svckit embeds and with a NATS
// cluster alike.
//
// Each instance is one key, "<service>.<id>", whose value is the instance as JSON. The key
// is written with a per-message time to live (NATS 2.11 and later), refreshed by a
// heartbeat, so a dead instance's key expires on its own; the bucket keeps limit markers,
// so watchers see the expiry as a removal. Watch follows the keys "<service>.*".
package natskv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svckit/svckit/discovery"
	"github.com/svckit/svckit/internal/jsx"
)

// DefaultBucket is the name of the key-value bucket the registry uses.
const DefaultBucket = "svckit_registry"

// Option configures a Registry.
type Option func(*Registry)

// WithBucket sets the bucket name; default DefaultBucket.
func WithBucket(name string) Option { return func(r *Registry) { r.bucket = name } }

// WithReplicas sets the number of replicas of the bucket when the registry creates it; use
// 3 on a cluster of three or more servers, so the registry survives the loss of one.
// Default 1.
func WithReplicas(n int) Option { return func(r *Registry) { r.replicas = n } }

// WithStorage sets where the bucket keeps its data when the registry creates it; default
// jetstream.MemoryStorage (registrations are refreshed continually, so they need not
// survive a server restart).
func WithStorage(s jetstream.StorageType) Option { return func(r *Registry) { r.storage = s } }

// WithKeepOptions sets the heartbeat and backoff of registrations (the TTL comes from
// Register).
func WithKeepOptions(o discovery.KeepOptions) Option { return func(r *Registry) { r.keep = o } }

// WithResync sets how long a watch may receive nothing before it is started again from the
// bucket's contents; default 10s. Keep it above a third of the TTL of registrations.
func WithResync(d time.Duration) Option { return func(r *Registry) { r.resync = d } }

// WithLogger sets the logger of heartbeat failures and re-registrations.
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.keep.Logger = l } }

// Registry is a discovery.Registry in a NATS key-value bucket.
type Registry struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	resync   time.Duration
	bucket   string
	replicas int
	storage  jetstream.StorageType
	keep     discovery.KeepOptions
	kv       jetstream.KeyValue
}

var _ discovery.Registry = (*Registry)(nil)

// New returns a registry on the NATS connection nc, creating the bucket if it does not
// exist. Give nc unlimited reconnects (nats.MaxReconnects(-1)) so that registrations and
// watches outlive server restarts.
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Registry, error) {
	r := &Registry{nc: nc, bucket: DefaultBucket, replicas: 1, storage: jetstream.MemoryStorage, resync: 10 * time.Second}
	for _, o := range opts {
		o(r)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natskv: %w", err)
	}
	r.js = js
	kv, err := r.ensureBucket(ctx)
	if err != nil {
		return nil, err
	}
	r.kv = kv
	return r, nil
}

// ensureBucket returns the bucket, creating it if it does not exist (at the start, or
// after a server restart lost a bucket in memory storage).
func (r *Registry) ensureBucket(ctx context.Context) (jetstream.KeyValue, error) {
	// Each lookup gets a few seconds: while a cluster elects a leader a request can go
	// unanswered, and waiting for it until ctx ends would leave no time to retry.
	var kv jetstream.KeyValue
	err := jsx.Retry(ctx, func(ctx context.Context) error {
		var err error
		kv, err = r.js.KeyValue(ctx, r.bucket)
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = jsx.CreateKeyValue(ctx, r.js, jetstream.KeyValueConfig{
			Bucket:         r.bucket,
			Description:    "svckit service registry",
			History:        1,
			Storage:        r.storage,
			Replicas:       r.replicas,
			LimitMarkerTTL: 30 * time.Second,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("natskv: bucket %s: %w", r.bucket, err)
	}
	return kv, nil
}

// record is the stored value of an instance.
type record struct {
	discovery.Instance
	TTL string `json:"ttl"`
}

// Register writes inst under "<service>.<id>" with a time to live of ttl (whole seconds,
// at least one; default discovery.DefaultTTL) and keeps it alive.
func (r *Registry) Register(ctx context.Context, inst discovery.Instance, ttl time.Duration) (discovery.Registration, error) {
	if inst.ID == "" {
		inst.ID = discovery.SafeID(inst.Addr)
	}
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = discovery.DefaultTTL
	}
	ttl = max(ttl.Round(time.Second), time.Second)
	value, err := json.Marshal(record{Instance: inst, TTL: ttl.String()})
	if err != nil {
		return nil, fmt.Errorf("natskv: %w", err)
	}
	key := inst.Service + "." + inst.ID
	l := &lease{r: r, key: key, subject: "$KV." + r.bucket + "." + key, value: value, ttl: ttl}
	opts := r.keep
	opts.TTL = ttl
	reg, err := discovery.Keep(ctx, inst, l, opts)
	if err != nil {
		return nil, fmt.Errorf("natskv: registering %s: %w", key, err)
	}
	return reg, nil
}

type lease struct {
	r       *Registry
	key     string
	subject string
	value   []byte
	ttl     time.Duration
}

// Register publishes the value with the per-message TTL; a new message replaces the old
// (the bucket keeps one per key), which is also how the TTL is extended.
// Register also creates the bucket again if it is gone.
func (l *lease) Register(ctx context.Context) error {
	err := l.publish(ctx)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		if _, berr := l.r.ensureBucket(ctx); berr != nil {
			return errors.Join(err, berr)
		}
		err = l.publish(ctx)
	}
	return err
}

func (l *lease) publish(ctx context.Context) error {
	_, err := l.r.js.PublishMsg(ctx, &nats.Msg{Subject: l.subject, Data: l.value}, jetstream.WithMsgTTL(l.ttl))
	return err
}

func (l *lease) Refresh(ctx context.Context) error { return l.publish(ctx) }

// Deregister purges the key. The purge marker, which tells watchers, expires after a
// minute, so that the markers of instances gone for good do not pile up in the bucket.
func (l *lease) Deregister(ctx context.Context) error {
	err := l.r.kv.Purge(ctx, l.key, jetstream.PurgeTTL(time.Minute))
	if err != nil {
		// A bucket made elsewhere, without per-message TTLs: purge for good.
		err = l.r.kv.Purge(ctx, l.key)
	}
	if err != nil {
		return fmt.Errorf("natskv: deregistering %s: %w", l.key, err)
	}
	return nil
}

// Watch follows the instances of service. The underlying key watch is started again, and
// the set rebuilt from the bucket's contents, when it ends, when the connection reconnects
// (to a restarted server or to another node of a cluster) and when nothing has arrived on
// it for the resync interval (see WithResync): heartbeats rewrite every live key each third
// of its TTL, so a silent watch is a stuck one or one with no instances. Starting the
// first watch is retried while it fails transiently (a cluster electing leaders), until
// ctx ends.
func (r *Registry) Watch(ctx context.Context, service string) (<-chan []discovery.Instance, error) {
	if strings.ContainsAny(service, ".*> ") || service == "" {
		return nil, fmt.Errorf("natskv: invalid service name %q", service)
	}
	// A new watch is a consumer; on a cluster its creation can time out while the bucket's
	// replicas elect a leader, so transient failures are retried until ctx ends. Each
	// attempt gets ctx itself, not a shorter one: the watch lives as long as its context
	// (the client bounds the creation request by its own timeout).
	var w jetstream.KeyWatcher
	err := jsx.Retry(ctx, func(context.Context) error {
		var err error
		w, err = r.kv.Watch(ctx, service+".*")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natskv: watching %s: %w", service, err)
	}
	f := discovery.NewFeed()
	status := r.nc.StatusChanged(nats.CONNECTED)
	go func() {
		defer r.nc.RemoveStatusListener(status)
		r.follow(ctx, service, w, f, status)
	}()
	return f.C(), nil
}

func (r *Registry) follow(ctx context.Context, service string, w jetstream.KeyWatcher, f *discovery.Feed, status <-chan nats.Status) {
	defer f.Close()
	for attempt := 0; ; {
		if w != nil {
			if r.consume(ctx, w, f, status) {
				attempt = 0
			}
			_ = w.Stop()
			w = nil
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(discovery.Backoff(50*time.Millisecond, 5*time.Second, attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		attempt++
		var err error
		if w, err = r.kv.Watch(ctx, service+".*"); err != nil {
			r.logger().WarnContext(ctx, "natskv: watch failed", slog.String("service", service), slog.String("error", err.Error()))
			w = nil
			_, _ = r.ensureBucket(ctx)
		}
	}
}

// consume applies the updates of w to a set and sends it to f until w or ctx ends, the
// connection reconnects or the watch is silent for the resync interval. It reports whether
// the watch delivered its initial set.
func (r *Registry) consume(ctx context.Context, w jetstream.KeyWatcher, f *discovery.Feed, status <-chan nats.Status) bool {
	set := map[string]discovery.Instance{}
	initial := false
	silence := time.NewTimer(r.resync)
	defer silence.Stop()
	for {
		select {
		case <-ctx.Done():
			return initial
		case <-status:
			return initial
		case <-silence.C:
			return initial
		case e, ok := <-w.Updates():
			if !ok {
				return initial
			}
			silence.Reset(r.resync)
			if e == nil { // the initial values are all delivered
				initial = true
				f.SendMap(set)
				continue
			}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				var rec record
				if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.Validate() != nil {
					r.logger().WarnContext(ctx, "natskv: ignoring a malformed entry", slog.String("key", e.Key()))
					delete(set, e.Key())
				} else {
					set[e.Key()] = rec.Instance
				}
			default:
				delete(set, e.Key())
			}
			if initial {
				f.SendMap(set)
			}
		}
	}
}

func (r *Registry) logger() *slog.Logger {
	if r.keep.Logger != nil {
		return r.keep.Logger
	}
	return slog.New(slog.DiscardHandler)
}
