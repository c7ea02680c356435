// Package dns finds service instances in DNS, as a Kubernetes headless service publishes
// them: SRV records ("_grpc._tcp.addsvc.default.svc.cluster.local") give each instance's
// host and port, and A/AAAA records of a "host:port" name give one instance per address.
// DNS has no push, so Watch polls. It is a read-only registry: Kubernetes (or whoever owns
// the zone) registers instances.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svckit/svckit/discovery"
)

// Resolver is the part of *net.Resolver that Watcher uses.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Option configures a Watcher.
type Option func(*Watcher)

// WithResolver sets the resolver; default net.DefaultResolver. Point a *net.Resolver
// with PreferGo and a Dial function at a particular DNS server.
func WithResolver(r Resolver) Option { return func(w *Watcher) { w.r = r } }

// WithInterval sets how often Watch looks the name up again; default 5s.
func WithInterval(d time.Duration) Option { return func(w *Watcher) { w.interval = d } }

// WithName sets how a service name becomes the DNS name looked up; the default uses the
// service name as it is. For example, for Kubernetes:
//
//	dns.WithName(func(s string) string { return "_grpc._tcp." + s + ".default.svc.cluster.local" })
func WithName(f func(service string) string) Option { return func(w *Watcher) { w.name = f } }

// WithTargetsAsIs keeps the host names of SRV targets in instance addresses instead of
// resolving them to IP addresses with the Watcher's resolver.
func WithTargetsAsIs() Option { return func(w *Watcher) { w.keepTargets = true } }

// WithLogger sets the logger of failed lookups.
func WithLogger(l *slog.Logger) Option { return func(w *Watcher) { w.logger = l } }

// Watcher finds instances in DNS. It is a discovery.Registry whose Register returns
// discovery.ErrReadOnly.
type Watcher struct {
	r           Resolver
	interval    time.Duration
	name        func(string) string
	keepTargets bool
	logger      *slog.Logger
}

var _ discovery.Registry = (*Watcher)(nil)

// New returns a Watcher.
func New(opts ...Option) *Watcher {
	w := &Watcher{r: net.DefaultResolver, interval: 5 * time.Second, name: func(s string) string { return s }}
	for _, o := range opts {
		o(w)
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	return w
}

// Register returns discovery.ErrReadOnly.
func (w *Watcher) Register(context.Context, discovery.Instance, time.Duration) (discovery.Registration, error) {
	return nil, discovery.ErrReadOnly
}

// Watch looks up the DNS name of service every interval and sends the instances found. A
// name starting with '_' is looked up as SRV records: each target and port is an instance,
// the SRV weight its weight; only the records of the lowest priority count. Any other name
// must be "host:port" and is looked up as A and AAAA records, one instance per address. A
// name that does not exist is an empty set. After other failures the last set stays and
// the lookup is tried again at the next interval; the first set is sent after the first
// lookup that succeeds.
func (w *Watcher) Watch(ctx context.Context, service string) (<-chan []discovery.Instance, error) {
	name := w.name(service)
	if !strings.HasPrefix(name, "_") {
		if _, _, err := net.SplitHostPort(name); err != nil {
			return nil, fmt.Errorf("dns: %q is neither an SRV name nor host:port: %w", name, err)
		}
	}
	f := discovery.NewFeed()
	go func() {
		defer f.Close()
		t := time.NewTicker(w.interval)
		defer t.Stop()
		for {
			set, err := w.Lookup(ctx, service)
			switch {
			case err == nil:
				f.Send(set)
			case ctx.Err() == nil:
				w.logger.WarnContext(ctx, "dns: lookup failed", slog.String("service", service), slog.String("name", name), slog.String("error", err.Error()))
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return f.C(), nil
}

// Lookup returns the instances of service now, as Watch finds them.
func (w *Watcher) Lookup(ctx context.Context, service string) ([]discovery.Instance, error) {
	name := w.name(service)
	if strings.HasPrefix(name, "_") {
		return w.lookupSRV(ctx, service, name)
	}
	host, port, err := net.SplitHostPort(name)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	addrs, err := w.r.LookupHost(ctx, host)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	var out []discovery.Instance
	for _, a := range addrs {
		out = append(out, instance(service, net.JoinHostPort(a, port), nil))
	}
	return out, nil
}

func (w *Watcher) lookupSRV(ctx context.Context, service, name string) ([]discovery.Instance, error) {
	_, recs, err := w.r.LookupSRV(ctx, "", "", name)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	lowest := slices.MinFunc(recs, func(a, b *net.SRV) int { return int(a.Priority) - int(b.Priority) }).Priority
	var out []discovery.Instance
	for _, r := range recs {
		if r.Priority != lowest {
			continue
		}
		port := strconv.Itoa(int(r.Port))
		var meta map[string]string
		if r.Weight > 0 {
			meta = map[string]string{discovery.MetaWeight: strconv.Itoa(int(r.Weight))}
		}
		target := strings.TrimSuffix(r.Target, ".")
		if w.keepTargets {
			out = append(out, instance(service, net.JoinHostPort(target, port), meta))
			continue
		}
		addrs, err := w.r.LookupHost(ctx, target)
		if err != nil {
			return nil, fmt.Errorf("dns: target %s of %s: %w", target, name, err)
		}
		for _, a := range addrs {
			out = append(out, instance(service, net.JoinHostPort(a, port), meta))
		}
	}
	return out, nil
}

func instance(service, addr string, meta map[string]string) discovery.Instance {
	return discovery.Instance{Service: service, ID: discovery.SafeID(addr), Addr: addr, Metadata: meta}
}

func notFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
