// Package etcd keeps a service registry in etcd: each instance is a key
// "<prefix><service>/<id>" holding the instance as JSON, attached to a lease whose TTL a
// heartbeat extends; Watch reads the keys under "<prefix><service>/" and then follows
// them with an etcd watch.
package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svckit/svckit/discovery"
)

// DefaultPrefix is the key prefix of the registry.
const DefaultPrefix = "/svckit/registry/"

// Option configures a Registry.
type Option func(*Registry)

// WithPrefix sets the key prefix; default DefaultPrefix.
func WithPrefix(p string) Option { return func(r *Registry) { r.prefix = p } }

// WithKeepOptions sets the heartbeat and backoff of registrations (the TTL comes from
// Register).
func WithKeepOptions(o discovery.KeepOptions) Option { return func(r *Registry) { r.keep = o } }

// WithLogger sets the logger of heartbeat and watch failures.
func WithLogger(l *slog.Logger) Option { return func(r *Registry) { r.keep.Logger = l } }

// Registry is a discovery.Registry in etcd.
type Registry struct {
	c      *clientv3.Client
	prefix string
	keep   discovery.KeepOptions
}

var _ discovery.Registry = (*Registry)(nil)

// New returns a registry that uses the etcd client c. Closing c is the caller's business.
func New(c *clientv3.Client, opts ...Option) *Registry {
	r := &Registry{c: c, prefix: DefaultPrefix}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Register writes inst under a lease of ttl (whole seconds, at least one; etcd may raise
// it to its minimum) and keeps the lease alive.
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
	value, err := json.Marshal(inst)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	l := &lease{c: r.c, key: r.prefix + inst.Service + "/" + inst.ID, value: string(value), ttl: int64(ttl / time.Second)}
	opts := r.keep
	opts.TTL = ttl
	reg, err := discovery.Keep(ctx, inst, l, opts)
	if err != nil {
		return nil, fmt.Errorf("etcd: registering %s: %w", l.key, err)
	}
	return reg, nil
}

type lease struct {
	c     *clientv3.Client
	key   string
	value string
	ttl   int64

	mu sync.Mutex
	id clientv3.LeaseID
}

// Register grants a new lease and writes the key under it.
func (l *lease) Register(ctx context.Context) error {
	g, err := l.c.Grant(ctx, l.ttl)
	if err != nil {
		return err
	}
	if _, err := l.c.Put(ctx, l.key, l.value, clientv3.WithLease(g.ID)); err != nil {
		_, _ = l.c.Revoke(ctx, g.ID)
		return err
	}
	l.mu.Lock()
	old := l.id
	l.id = g.ID
	l.mu.Unlock()
	if old != 0 && old != g.ID {
		_, _ = l.c.Revoke(ctx, old) // an expired lease; revoking it fails harmlessly
	}
	return nil
}

// Refresh extends the lease; it fails when the lease expired (during an outage).
func (l *lease) Refresh(ctx context.Context) error {
	l.mu.Lock()
	id := l.id
	l.mu.Unlock()
	resp, err := l.c.KeepAliveOnce(ctx, id)
	if err != nil {
		return err
	}
	if resp.TTL <= 0 {
		return fmt.Errorf("lease %x expired", int64(id))
	}
	return nil
}

// Deregister revokes the lease, which deletes the key.
func (l *lease) Deregister(ctx context.Context) error {
	l.mu.Lock()
	id := l.id
	l.mu.Unlock()
	if _, err := l.c.Revoke(ctx, id); err != nil {
		if _, derr := l.c.Delete(ctx, l.key); derr != nil {
			return fmt.Errorf("etcd: deregistering %s: %w", l.key, err)
		}
	}
	return nil
}

// Watch follows the instances of service: it reads the current keys, then follows changes
// from the revision read. When the etcd watch fails (the server lost its leader, the
// revision was compacted, the connection broke), it reads and watches again, with backoff.
func (r *Registry) Watch(ctx context.Context, service string) (<-chan []discovery.Instance, error) {
	if service == "" || strings.Contains(service, "/") {
		return nil, fmt.Errorf("etcd: invalid service name %q", service)
	}
	f := discovery.NewFeed()
	go func() {
		defer f.Close()
		prefix := r.prefix + service + "/"
		for attempt := 0; ctx.Err() == nil; attempt++ {
			if err := r.follow(ctx, prefix, f); err != nil && ctx.Err() == nil {
				r.logger().WarnContext(ctx, "etcd: watch failed", slog.String("service", service), slog.String("error", err.Error()))
			} else {
				attempt = 0
			}
			t := time.NewTimer(discovery.Backoff(50*time.Millisecond, 5*time.Second, attempt))
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}()
	return f.C(), nil
}

// follow reads the keys under prefix, sends the set and then applies the changes of an
// etcd watch until it ends.
func (r *Registry) follow(ctx context.Context, prefix string, f *discovery.Feed) error {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	resp, err := r.c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	set := map[string]discovery.Instance{}
	for _, kv := range resp.Kvs {
		r.apply(ctx, set, string(kv.Key), kv.Value, false)
	}
	f.SendMap(set)
	wch := r.c.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			r.apply(ctx, set, string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete)
		}
		f.SendMap(set)
	}
	return ctx.Err()
}

func (r *Registry) apply(ctx context.Context, set map[string]discovery.Instance, key string, value []byte, deleted bool) {
	if deleted {
		delete(set, key)
		return
	}
	var in discovery.Instance
	if err := json.Unmarshal(value, &in); err != nil || in.Validate() != nil {
		r.logger().WarnContext(ctx, "etcd: ignoring a malformed entry", slog.String("key", key))
		delete(set, key)
		return
	}
	set[key] = in
}

func (r *Registry) logger() *slog.Logger {
	if r.keep.Logger != nil {
		return r.keep.Logger
	}
	return slog.New(slog.DiscardHandler)
}
