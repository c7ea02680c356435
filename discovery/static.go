package discovery

import (
	"context"
	"sync"
	"time"
)

// Static is an in-memory Registry: a fixed list of instances given up front, and the
// instances registered in this process. Registrations do not expire (the process that holds
// them is the one that would stop heartbeating); Deregister removes them. It suits fixed
// deployments ("the payments service is at these two addresses"), single-process systems
// and tests. The zero value is an empty registry.
type Static struct {
	mu       sync.Mutex
	services map[string]map[string]Instance
	watchers map[string]map[*Feed]struct{}
}

var _ Registry = (*Static)(nil)

// NewStatic returns a Static registry holding instances. An instance without an ID gets
// SafeID(Addr).
func NewStatic(instances ...Instance) *Static {
	s := &Static{}
	for _, in := range instances {
		s.put(in.withDefaults())
	}
	return s
}

// Set replaces the instances of service with instances, as a configuration reload would.
func (s *Static) Set(service string, instances ...Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]Instance, len(instances))
	for _, in := range instances {
		in.Service = service
		in = in.withDefaults()
		m[in.ID] = in
	}
	s.init()
	s.services[service] = m
	s.notifyLocked(service)
}

func (s *Static) init() {
	if s.services == nil {
		s.services = make(map[string]map[string]Instance)
		s.watchers = make(map[string]map[*Feed]struct{})
	}
}

func (s *Static) put(in Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	m := s.services[in.Service]
	if m == nil {
		m = make(map[string]Instance)
		s.services[in.Service] = m
	}
	m[in.ID] = in
	s.notifyLocked(in.Service)
}

func (s *Static) remove(in Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if cur, ok := s.services[in.Service][in.ID]; ok && cur.Equal(in) {
		delete(s.services[in.Service], in.ID)
		s.notifyLocked(in.Service)
	}
}

func (s *Static) notifyLocked(service string) {
	for f := range s.watchers[service] {
		f.SendMap(s.services[service])
	}
}

// Register adds inst until Deregister; ttl is ignored.
func (s *Static) Register(_ context.Context, inst Instance, _ time.Duration) (Registration, error) {
	inst = inst.withDefaults()
	if err := inst.Validate(); err != nil {
		return nil, err
	}
	s.put(inst)
	return &staticReg{s: s, inst: inst}, nil
}

// Watch follows the instances of service.
func (s *Static) Watch(ctx context.Context, service string) (<-chan []Instance, error) {
	f := NewFeed()
	s.mu.Lock()
	s.init()
	if s.watchers[service] == nil {
		s.watchers[service] = make(map[*Feed]struct{})
	}
	s.watchers[service][f] = struct{}{}
	f.SendMap(s.services[service])
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		delete(s.watchers[service], f)
		s.mu.Unlock()
		f.Close()
	}()
	return f.C(), nil
}

type staticReg struct {
	s    *Static
	inst Instance
	once sync.Once
}

func (r *staticReg) Instance() Instance { return r.inst }

func (r *staticReg) Deregister(context.Context) error {
	r.once.Do(func() { r.s.remove(r.inst) })
	return nil
}
