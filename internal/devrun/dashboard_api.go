package devrun

// Accessors for the dashboard (package dashboard) beyond the stores' query methods.

// Range calls f for every stored trace, newest first, under the store's read lock, until
// f returns false. f must neither keep nor change the trace, and must not call the store.
func (s *TraceStore) Range(f func(t *Trace) bool) { s.rangeTraces(f) }
