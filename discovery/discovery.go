// Package discovery finds the instances of a service. A service instance registers itself
// with a [Registry] under a time to live and keeps its entry alive with a heartbeat; clients
// [Watcher.Watch] a service name and receive the whole current set of its instances every
// time it changes.
//
// The backends live in subpackages: natskv (NATS JetStream key-value, the default: it works
// with the embedded NATS server and with a cluster), dns (A/AAAA and SRV records, as a
// Kubernetes headless service publishes them; watch only) and etcd (leases and watches). This
// package has the in-memory [Static] registry, for fixed lists and tests, and the
// heartbeat loop the backends share ([Keep]).
//
// An [Instance] carries metadata: by convention "version", "zone" and "weight", which the
// balancer package uses for routing and weighting.
package discovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The metadata keys svckit gives a meaning to.
const (
	// MetaVersion is the metadata key of an instance's version, such as "v2"; routing rules
	// select instances by it.
	MetaVersion = "version"
	// MetaZone is the metadata key of an instance's zone or region.
	MetaZone = "zone"
	// MetaWeight is the metadata key of an instance's relative weight, a positive number;
	// the default is 1.
	MetaWeight = "weight"
)

// Instance is one running copy of a service, reachable at Addr.
type Instance struct {
	// Service is the service name, such as "addsvc".
	Service string `json:"service"`
	// ID tells the instance apart from the other instances of the service. It is unique per
	// service; the default, when an instance registers without one, is Addr.
	ID string `json:"id"`
	// Addr is where the instance listens, as host:port.
	Addr string `json:"addr"`
	// Metadata holds free-form attributes: MetaVersion, MetaZone, MetaWeight and any other.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Key returns "service/id", which identifies the instance among all services.
func (i Instance) Key() string { return i.Service + "/" + i.ID }

// Version returns the MetaVersion metadata, or "".
func (i Instance) Version() string { return i.Metadata[MetaVersion] }

// Zone returns the MetaZone metadata, or "".
func (i Instance) Zone() string { return i.Metadata[MetaZone] }

// Weight returns the MetaWeight metadata as a number, or 1 when it is missing, not a
// number, or not positive.
func (i Instance) Weight() float64 {
	s, ok := i.Metadata[MetaWeight]
	if !ok {
		return 1
	}
	w, err := strconv.ParseFloat(s, 64)
	if err != nil || !(w > 0) || w > 1e9 {
		return 1
	}
	return w
}

// Equal reports whether i and o have the same fields and metadata.
func (i Instance) Equal(o Instance) bool {
	return i.Service == o.Service && i.ID == o.ID && i.Addr == o.Addr && maps.Equal(i.Metadata, o.Metadata)
}

// Validate checks that the instance has a service name and an address, and that the name
// and id hold only the characters that every backend accepts in keys: letters, digits,
// '-', '_' and '='. Use it before registering; Register calls it too.
func (i Instance) Validate() error {
	if i.Service == "" {
		return errors.New("discovery: instance has no service name")
	}
	if i.Addr == "" {
		return fmt.Errorf("discovery: instance %q of %s has no address", i.ID, i.Service)
	}
	for _, f := range []struct{ what, s string }{{"service name", i.Service}, {"instance id", i.ID}} {
		if i := strings.IndexFunc(f.s, badKeyRune); i >= 0 {
			return fmt.Errorf("discovery: %s %q has the character %q; use letters, digits, '-', '_' and '='", f.what, f.s, f.s[i])
		}
	}
	return nil
}

func badKeyRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=')
}

// withDefaults returns i with ID set to a key-safe form of Addr when it is empty.
func (i Instance) withDefaults() Instance {
	if i.ID == "" {
		i.ID = SafeID(i.Addr)
	}
	return i
}

// SafeID returns s with every character that is not allowed in an instance id replaced by
// '_', for making ids from addresses: SafeID("10.0.0.7:8081") is "10_0_0_7_8081".
func SafeID(s string) string {
	return strings.Map(func(r rune) rune {
		if badKeyRune(r) {
			return '_'
		}
		return r
	}, s)
}

// Sort sorts instances by ID, the order in which watchers deliver them.
func Sort(instances []Instance) {
	slices.SortFunc(instances, func(a, b Instance) int { return cmp.Compare(a.ID, b.ID) })
}

// Registry is where instances announce themselves and where clients find them.
type Registry interface {
	Watcher
	// Register announces inst for ttl: it stays registered as long as the returned
	// Registration keeps it alive, and disappears about ttl after the process dies. An
	// empty inst.ID defaults to SafeID(inst.Addr). Register fails when the first write
	// fails; later failures are retried by the Registration until Deregister.
	Register(ctx context.Context, inst Instance, ttl time.Duration) (Registration, error)
}

// Watcher follows the instances of services.
type Watcher interface {
	// Watch returns a channel that receives the full, current set of the instances of
	// service, sorted by ID: first the set as it is now (possibly empty), then a new set
	// after every change. A receiver that falls behind gets the latest set only. The
	// channel is closed when ctx ends.
	Watch(ctx context.Context, service string) (<-chan []Instance, error)
}

// Registration is one registered instance, kept alive by a heartbeat until Deregister.
type Registration interface {
	// Instance returns the registered instance, its ID filled in.
	Instance() Instance
	// Deregister stops the heartbeat and removes the instance, so that watchers see it gone
	// at once rather than after its time to live. It is safe to call more than once.
	Deregister(ctx context.Context) error
}

// ErrReadOnly is returned by Register of backends that only find instances, such as DNS.
var ErrReadOnly = errors.New("discovery: this registry is read-only")

// DefaultTTL is a sensible time to live for registrations: an instance that dies without
// deregistering disappears from watchers within it.
const DefaultTTL = 15 * time.Second
