package devrun

// Accessors for the dashboard (package dashboard) beyond the stores' query methods.

// Range calls f for every stored trace, newest first, under the store's read lock, until
// f returns false. f must neither keep nor change the trace, and must not call the store.
func (s *TraceStore) Range(f func(t *Trace) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := len(s.order)
	for i := 0; i < n; i++ {
		t := s.traces[s.order[(s.head-1-i+2*n)%n]]
		if t != nil && !f(t) {
			return
		}
	}
}
