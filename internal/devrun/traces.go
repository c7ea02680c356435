package devrun

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unsafe"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is one span received over OTLP.
type Span struct {
	TraceID  string            `json:"trace_id"`
	SpanID   string            `json:"span_id"`
	ParentID string            `json:"parent_id,omitempty"`
	Service  string            `json:"service"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Error    bool              `json:"error"`
	Canceled bool              `json:"canceled,omitempty"` // ended because its caller went away; then not Error
	Status   string            `json:"status,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`

	// pairs are the attributes as the collector decoded them, when Attrs is nil: the
	// store shares a map it holds already instead of building one per span.
	pairs []attrPair
	// shared says Attrs is a map the store holds already (the collector found the span's
	// attributes' bytes among the store's raw sets), which it keeps as it is.
	shared bool
	// raw is the span's attributes as they were on the wire (a view of the request) and
	// rawHash its hash, when they were one run of fields: the store remembers the bytes of
	// a set it shares, so that the collector finds the set from them the next time.
	raw     []byte
	rawHash uint64
}

// attrPair is one attribute; a later pair with the same key wins, as in a map.
type attrPair struct{ k, v string }

// attr returns the value of the attribute k.
func (s *Span) attr(k string) string {
	if s.Attrs != nil || len(s.pairs) == 0 {
		return s.Attrs[k]
	}
	v := ""
	for i := range s.pairs {
		if s.pairs[i].k == k {
			v = s.pairs[i].v
		}
	}
	return v
}

// canceled tells a span of a request its client cancelled — svcerr's kind canceled
// (svckit.error.kind), HTTP 499, gRPC CANCELLED, error.type canceled, or a status that
// says context canceled — from a failure: the server did nothing wrong.
func canceled(s *Span) bool {
	return canceledAttrs(s.attr) || canceledStatus(s.Status)
}

// canceledAttrs is the part of canceled that reads the attributes (a returns the value of
// one).
func canceledAttrs(a func(string) string) bool {
	switch {
	case a("svckit.error.kind") == "canceled", a("http.response.status_code") == "499", a("http.status_code") == "499",
		a("rpc.grpc.status_code") == "1", a("rpc.response.status_code") == "CANCELLED", // semconv before v1.40 and from it
		strings.EqualFold(a("error.type"), "canceled"), a("error.type") == "context.Canceled":
		return true
	}
	return false
}

// canceledStatus is the part of canceled that reads the status message.
func canceledStatus(status string) bool {
	if status == "" {
		return false
	}
	st := strings.ToLower(status)
	return strings.Contains(st, "context canceled") || strings.Contains(st, "request canceled")
}

// Duration returns End - Start.
func (s *Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Trace is the spans of one trace id received so far.
type Trace struct {
	ID       string    `json:"id"`
	Spans    []Span    `json:"spans"`
	Received time.Time `json:"received"`
}

// Root returns the span without a parent in the trace, or the earliest span.
func (t *Trace) Root() *Span {
	var root *Span
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.ParentID == "" {
			return s
		}
		if root == nil || s.Start.Before(root.Start) {
			root = s
		}
	}
	return root
}

// Summary describes a trace in lists.
type Summary struct {
	ID       string        `json:"id"`
	Root     string        `json:"root"`
	Service  string        `json:"service"`
	Services []string      `json:"services"`
	Spans    int           `json:"spans"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Error    bool          `json:"error"`
	Canceled bool          `json:"canceled,omitempty"` // a span was cancelled by its caller
}

// Summarize returns the trace's summary.
func (t *Trace) Summarize() Summary {
	s := Summary{ID: t.ID, Spans: len(t.Spans)}
	if r := t.Root(); r != nil {
		s.Root, s.Service, s.Start = r.Name, r.Service, r.Start
	}
	var end time.Time
	seen := map[string]bool{}
	for i := range t.Spans {
		sp := &t.Spans[i]
		if sp.Start.Before(s.Start) || s.Start.IsZero() {
			s.Start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		if sp.Error {
			s.Error = true
		}
		if sp.Canceled {
			s.Canceled = true
		}
		if !seen[sp.Service] {
			seen[sp.Service] = true
			s.Services = append(s.Services, sp.Service)
		}
	}
	sort.Strings(s.Services)
	s.Duration = end.Sub(s.Start)
	return s
}

// TraceStore keeps the most recent traces, bounded by count and by an estimate of their
// bytes; the oldest trace is dropped first. Spans are stored compactly and share what they
// repeat: service, span and attribute names and short attribute values are interned, spans
// with the same attributes (such as every "SELECT products" of a service) share one map,
// which is never changed, and a child's parent id is its parent's span id. Get, Query and
// Range build Span values from them.
type TraceStore struct {
	mu       sync.RWMutex
	traces   map[string]*storedTrace
	order    []string // trace ids, oldest first (a ring)
	head     int
	limit    int
	spans    int
	bytes    int                            // estimated bytes of the stored traces
	maxBytes int                            // bound of bytes
	added    uint64                         // traces added so far; the n-th one is in slot n % limit
	dropped  uint64                         // the oldest traces dropped so far (by count or by bytes)
	strs     map[string]string              // attribute keys and values, forgotten when full
	attrSets map[uint64][]map[string]string // by a hash of their contents, forgotten when full
	seenSets map[uint64]struct{}            // hashes of sets seen once, forgotten when full
	seed     maphash.Seed
	names    []string                // services, span names and kinds, never forgotten; 0 is ""
	nameIdx  map[string]uint16       // index in names
	batch    map[string]int          // Add's, reused: spans per trace of the call
	rawSets  map[uint64][]rawAttrSet // shared sets by a hash of their wire bytes, forgotten when full
	nraw     int                     // sets in rawSets
	ids      idArena                 // trace and span ids' copies
}

// idArena copies short strings (trace and span ids) into shared chunks instead of one
// allocation each. The chunks' bytes are never written again once handed out; a chunk is
// freed when none of its strings is stored any more. Traces are dropped oldest first, and
// the ids of a trace arrive within moments of each other, so a chunk outlives its traces
// little.
type idArena struct{ chunk []byte }

const (
	idChunk  = 4 << 10 // bytes of an idArena's chunk
	maxIDLen = 64      // longer strings get an allocation of their own
)

// clone returns a copy of v that shares no memory with v.
func (a *idArena) clone(v string) string {
	if len(v) == 0 || len(v) > maxIDLen {
		return strings.Clone(v)
	}
	if cap(a.chunk)-len(a.chunk) < len(v) {
		a.chunk = make([]byte, 0, idChunk)
	}
	n := len(a.chunk)
	a.chunk = append(a.chunk, v...)
	return unsafe.String(&a.chunk[n], len(v))
}

// rawAttrSet is an attribute set the store shares, as the bytes of its KeyValue fields on
// the wire (one order of them): the collector finds the set's map from a span's bytes
// without decoding them.
type rawAttrSet struct {
	raw      string
	m        map[string]string
	canceled bool // canceledAttrs of m
}

// maxRawSet bounds the wire bytes of an attribute set the store remembers in rawSets.
const maxRawSet = 1024

// lookupRawLocked returns the shared set whose wire bytes are raw (of hash h), if the
// store has one; s.mu is held, for reading at least.
func (s *TraceStore) lookupRawLocked(h uint64, raw []byte) *rawAttrSet {
	sets := s.rawSets[h]
	for i := range sets {
		if sets[i].raw == string(raw) {
			return &sets[i]
		}
	}
	return nil
}

// rememberRawLocked remembers raw (of hash h) as the wire bytes of the shared set m.
func (s *TraceStore) rememberRawLocked(h uint64, raw []byte, m map[string]string) {
	if len(raw) > maxRawSet || s.lookupRawLocked(h, raw) != nil {
		return
	}
	if s.nraw >= maxAttrSets {
		clear(s.rawSets)
		s.nraw = 0
	}
	set := rawAttrSet{raw: string(raw), m: m}
	set.canceled = canceledAttrs(func(k string) string { return m[k] })
	s.rawSets[h] = append(s.rawSets[h], set)
	s.nraw++
}

// storedTrace is a trace as the store keeps it.
type storedTrace struct {
	id       string
	received time.Time
	spans    []storedSpan
	seq      uint64 // the order in which the store received it
	bytes    int    // the store's estimate of its size
}

// storedSpan is a span as the store keeps it, about 40% of a Span.
type storedSpan struct {
	spanID, parentID    string
	start, end          int64             // Unix nanoseconds
	attrs               map[string]string // shared: never changed
	extra               *spanExtra        // what is rare
	service, name, kind uint16            // index in TraceStore.names
	flags               uint8
}

// spanExtra holds the fields of a span that are not stored in its storedSpan.
type spanExtra struct {
	status              string
	service, name, kind string    // when the names table is full
	start, end          time.Time // in a zone other than UTC or the local one
	times               bool
}

const (
	spanError uint8 = 1 << iota
	spanCanceled
	startUTC
	endUTC
	startZero
	endZero
)

// NewTraceStore keeps at most limit traces (default 10,000) in at most about
// DefaultTraceBytes; a trace keeps at most its first 1,000 spans.
func NewTraceStore(limit int) *TraceStore {
	if limit <= 0 {
		limit = 10_000
	}
	return &TraceStore{traces: make(map[string]*storedTrace), limit: limit, maxBytes: DefaultTraceBytes,
		strs: map[string]string{}, attrSets: map[uint64][]map[string]string{}, seenSets: map[uint64]struct{}{},
		seed:  maphash.MakeSeed(),
		names: []string{""}, nameIdx: map[string]uint16{"": 0}, rawSets: map[uint64][]rawAttrSet{}}
}

// DefaultTraceBytes bounds a TraceStore's estimated size: about 12,000 traces of the shop's
// 25 spans, so the count (10,000) is the bound that applies there.
const DefaultTraceBytes = 40 << 20

// SetMaxBytes changes the bound of the store's estimated size (n <= 0: DefaultTraceBytes);
// the oldest traces beyond it are dropped at once.
func (s *TraceStore) SetMaxBytes(n int) {
	if n <= 0 {
		n = DefaultTraceBytes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxBytes = n
	s.trimLocked()
}

const (
	maxSpansPerTrace = 1000
	maxInterned      = 1 << 14 // attribute keys and values remembered for sharing, then forgotten
	maxAttrSets      = 1 << 12 // attribute sets remembered for sharing, then forgotten
	maxInternLen     = 128     // longer attribute values are kept as they are
	storedSpanBytes  = int(unsafe.Sizeof(storedSpan{}))
	spanExtraBytes   = int(unsafe.Sizeof(spanExtra{}))
	traceBytes       = int(unsafe.Sizeof(storedTrace{})) + 96 // and its map entry and ring slot
)

// intern returns a stored string equal to v.
func (s *TraceStore) intern(v string) string {
	if v == "" || len(v) > maxInternLen {
		return v
	}
	if w, ok := s.strs[v]; ok {
		return w
	}
	if len(s.strs) >= maxInterned {
		clear(s.strs)
	}
	v = strings.Clone(v) // not a piece of a larger buffer
	s.strs[v] = v
	return v
}

// name returns the index of v in s.names, adding it, or false when the table is full.
func (s *TraceStore) name(v string) (uint16, bool) {
	if i, ok := s.nameIdx[v]; ok {
		return i, true
	}
	if len(s.names) > math.MaxUint16 || len(v) > maxInternLen {
		return 0, false
	}
	v = strings.Clone(v)
	i := uint16(len(s.names))
	s.names = append(s.names, v)
	s.nameIdx[v] = i
	return i, true
}

// attrs returns a map equal to a, shared with earlier spans when one had the same
// attributes, with interned keys and values, and its estimated bytes when it is new.
func (s *TraceStore) attrs(a map[string]string) (map[string]string, int) {
	if len(a) == 0 {
		return nil, 0
	}
	var sum uint64
	var h maphash.Hash
	h.SetSeed(s.seed)
	for k, v := range a {
		h.Reset()
		h.WriteString(k)
		h.WriteByte(0)
		h.WriteString(v)
		sum += h.Sum64() // order-independent
	}
	for _, m := range s.attrSets[sum] {
		if maps.Equal(m, a) {
			return m, 0
		}
	}
	m := make(map[string]string, len(a))
	size := 48 + len(a)*40
	for k, v := range a {
		k2, v2 := s.intern(k), s.intern(v)
		if len(k) > maxInternLen { // not interned: a copy, never a piece of the caller's buffer
			k2 = strings.Clone(k)
			size += len(k)
		}
		if len(v) > maxInternLen {
			v2 = strings.Clone(v)
			size += len(v)
		}
		m[k2] = v2
	}
	// A set is shared from its second sighting on, so that sets seen once (such as a
	// message's, with its id) do not crowd out the common ones, nor outlive their spans
	// in the table for long.
	if _, ok := s.seenSets[sum]; !ok {
		if len(s.seenSets) >= maxAttrSets {
			clear(s.seenSets)
		}
		s.seenSets[sum] = struct{}{}
		return m, size
	}
	if len(s.attrSets) >= maxAttrSets {
		clear(s.attrSets)
	}
	s.attrSets[sum] = append(s.attrSets[sum], m)
	return m, size
}

// attrsOfPairs is attrs for attributes as pairs: a set the store shares already is found
// without building a map.
func (s *TraceStore) attrsOfPairs(pairs []attrPair) (map[string]string, int) {
	var sum uint64
	var h maphash.Hash
	h.SetSeed(s.seed)
	for i := range pairs {
		h.Reset()
		h.WriteString(pairs[i].k)
		h.WriteByte(0)
		h.WriteString(pairs[i].v)
		sum += h.Sum64()
	}
	// Pairs with a repeated key hash differently from their map, so are not found here;
	// the map built below settles them.
	for _, m := range s.attrSets[sum] {
		if len(m) == len(pairs) && pairsIn(pairs, m) {
			return m, 0
		}
	}
	a := make(map[string]string, len(pairs))
	for i := range pairs {
		a[pairs[i].k] = pairs[i].v
	}
	return s.attrs(a)
}

// pairsIn reports whether every pair is in m.
func pairsIn(pairs []attrPair, m map[string]string) bool {
	for i := range pairs {
		if v, ok := m[pairs[i].k]; !ok || v != pairs[i].v {
			return false
		}
	}
	return true
}

// Add stores spans.
func (s *TraceStore) Add(spans []Span) {
	if len(spans) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var batch map[string]int // spans per trace in this call, to grow each trace once
	if len(spans) > 1 {
		if s.batch == nil {
			s.batch = make(map[string]int)
		}
		batch = s.batch
		defer clear(batch) // keeps none of the caller's strings
		for i := range spans {
			batch[spans[i].TraceID]++
		}
	}
	for i := range spans {
		sp := &spans[i]
		t, ok := s.traces[sp.TraceID]
		if !ok {
			if s.added-s.dropped >= uint64(s.limit) {
				s.dropOldestLocked()
			}
			t = &storedTrace{id: s.ids.clone(sp.TraceID), received: time.Now(), seq: s.added, bytes: traceBytes}
			if len(s.order) < s.limit {
				s.order = append(s.order, t.id)
			} else {
				s.order[s.head] = t.id
				s.head = (s.head + 1) % s.limit
			}
			s.added++
			s.traces[t.id] = t
			s.bytes += t.bytes
		}
		if len(t.spans) >= maxSpansPerTrace {
			continue
		}
		if len(t.spans) == cap(t.spans) {
			n := max(batch[sp.TraceID], 1)
			grown := make([]storedSpan, len(t.spans), min(len(t.spans)+n, maxSpansPerTrace))
			copy(grown, t.spans)
			d := (cap(grown) - cap(t.spans)) * storedSpanBytes
			t.spans = grown
			t.bytes += d
			s.bytes += d
		}
		if batch != nil {
			batch[sp.TraceID]--
		}
		ss, size := s.store(t, sp)
		t.spans = append(t.spans, ss)
		t.bytes += size
		s.bytes += size
		s.spans++
	}
	s.trimLocked()
}

// unixTime splits t into Unix nanoseconds and flags for Start (shift 0) or End (shift 1),
// or reports that its zone is neither UTC nor the local one.
func unixTime(t time.Time, shift uint8) (int64, uint8, bool) {
	switch {
	case t.IsZero():
		return 0, startZero << shift, true
	case t.Location() == time.UTC:
		return t.UnixNano(), startUTC << shift, true
	case t.Location() == time.Local:
		return t.UnixNano(), 0, true
	}
	return 0, 0, false
}

// store returns the stored form of sp, sharing what it can with what t and s hold, and the
// estimated bytes of what it could not share.
func (s *TraceStore) store(t *storedTrace, sp *Span) (storedSpan, int) {
	var ss storedSpan
	var x spanExtra
	extra := sp.Status != ""
	if extra {
		x.status = strings.Clone(sp.Status)
	}
	var ok bool
	if ss.service, ok = s.name(sp.Service); !ok {
		x.service, extra = strings.Clone(sp.Service), true
	}
	if ss.name, ok = s.name(sp.Name); !ok {
		x.name, extra = strings.Clone(sp.Name), true
	}
	if ss.kind, ok = s.name(sp.Kind); !ok {
		x.kind, extra = strings.Clone(sp.Kind), true
	}
	start, f1, ok1 := unixTime(sp.Start, 0)
	end, f2, ok2 := unixTime(sp.End, 1)
	if ok1 && ok2 {
		ss.start, ss.end, ss.flags = start, end, f1|f2
	} else {
		x.start, x.end, x.times, extra = sp.Start, sp.End, true, true
	}
	if sp.Error {
		ss.flags |= spanError
	}
	if sp.Canceled {
		ss.flags |= spanCanceled
	}
	size := 0
	if extra {
		xp := new(spanExtra) // only now: &x would put every span's on the heap
		*xp = x
		ss.extra = xp
		size += spanExtraBytes + len(x.status) + len(x.service) + len(x.name) + len(x.kind)
	}
	// A span id is stored once: a parent's id and its children's parent ids share it.
	var spanID, parentID string
	if len(t.spans) <= 64 {
		for i := range t.spans {
			o := &t.spans[i]
			if spanID == "" && o.parentID == sp.SpanID {
				spanID = o.parentID
			}
			if parentID == "" && sp.ParentID != "" && o.spanID == sp.ParentID {
				parentID = o.spanID
			}
		}
	}
	if spanID == "" {
		spanID = s.ids.clone(sp.SpanID)
		size += len(spanID)
	}
	if parentID == "" && sp.ParentID != "" {
		parentID = s.ids.clone(sp.ParentID)
		size += len(parentID)
	}
	ss.spanID, ss.parentID = spanID, parentID
	var a map[string]string
	var n int
	switch {
	case sp.shared:
		a = sp.Attrs // the store's already
	case sp.Attrs == nil && len(sp.pairs) > 0:
		a, n = s.attrsOfPairs(sp.pairs)
		if n == 0 && sp.raw != nil { // a set the store shares: found by its bytes next time
			s.rememberRawLocked(sp.rawHash, sp.raw, a)
		}
	default:
		a, n = s.attrs(sp.Attrs)
	}
	ss.attrs = a
	return ss, size + n
}

// spanLocked builds the Span of a stored span into out; its strings and attribute map are
// the stored ones, which nobody may change.
func (s *TraceStore) spanLocked(t *storedTrace, ss *storedSpan, out *Span) {
	at := func(n int64, utc, zero bool) time.Time {
		switch {
		case zero:
			return time.Time{}
		case utc:
			return time.Unix(0, n).UTC()
		}
		return time.Unix(0, n)
	}
	*out = Span{TraceID: t.id, SpanID: ss.spanID, ParentID: ss.parentID,
		Service: s.names[ss.service], Name: s.names[ss.name], Kind: s.names[ss.kind],
		Start: at(ss.start, ss.flags&startUTC != 0, ss.flags&startZero != 0),
		End:   at(ss.end, ss.flags&endUTC != 0, ss.flags&endZero != 0),
		Error: ss.flags&spanError != 0, Canceled: ss.flags&spanCanceled != 0, Attrs: ss.attrs}
	if x := ss.extra; x != nil {
		out.Status = x.status
		out.Service, out.Name, out.Kind = cmp.Or(x.service, out.Service), cmp.Or(x.name, out.Name), cmp.Or(x.kind, out.Kind)
		if x.times {
			out.Start, out.End = x.start, x.end
		}
	}
}

// traceLocked builds the Trace of a stored trace into out, reusing out.Spans.
func (s *TraceStore) traceLocked(t *storedTrace, out *Trace) {
	out.ID, out.Received = t.id, t.received
	out.Spans = slices.Grow(out.Spans[:0], len(t.spans))[:len(t.spans)]
	for i := range t.spans {
		s.spanLocked(t, &t.spans[i], &out.Spans[i])
	}
}

// rangeTraces calls f for every stored trace, newest first, under the read lock, until f
// returns false; the *Trace is reused from call to call.
func (s *TraceStore) rangeTraces(f func(t *Trace) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var scratch Trace
	for i := range s.added - s.dropped {
		seq := s.added - 1 - i
		t := s.traces[s.order[seq%uint64(s.limit)]]
		if t == nil || t.seq != seq {
			continue
		}
		s.traceLocked(t, &scratch)
		if !f(&scratch) {
			return
		}
	}
}

// dropOldestLocked drops the oldest trace still stored.
func (s *TraceStore) dropOldestLocked() {
	for s.dropped < s.added {
		seq := s.dropped
		s.dropped++
		id := s.order[seq%uint64(s.limit)]
		if t := s.traces[id]; t != nil && t.seq == seq {
			delete(s.traces, id)
			s.spans -= len(t.spans)
			s.bytes -= t.bytes
			return
		}
	}
}

// trimLocked drops the oldest traces while the store is over its bytes, but keeps the
// newest trace.
func (s *TraceStore) trimLocked() {
	for s.bytes > s.maxBytes && s.added-s.dropped > 1 {
		s.dropOldestLocked()
	}
}

// Get returns a copy of the trace with the given id, spans ordered by start time.
func (s *TraceStore) Get(id string) (Trace, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.traces[id]
	if !ok {
		return Trace{}, false
	}
	var c Trace
	s.traceLocked(t, &c)
	slices.SortStableFunc(c.Spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return c, true
}

// TraceFilter selects traces; empty fields match everything.
type TraceFilter struct {
	Service     string
	Name        string // substring of any span's name (the endpoint)
	ErrorsOnly  bool
	MinDuration time.Duration
	ID          string // prefix of the trace id
	Limit       int    // default 100
}

// Query returns summaries of the most recent matching traces, newest first.
func (s *TraceStore) Query(f TraceFilter) []Summary {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	var out []Summary
	s.rangeTraces(func(t *Trace) bool {
		if f.ID != "" && !strings.HasPrefix(t.ID, f.ID) {
			return true
		}
		if f.Service != "" || f.Name != "" {
			match := false
			for j := range t.Spans {
				sp := &t.Spans[j]
				if (f.Service == "" || sp.Service == f.Service) && (f.Name == "" || strings.Contains(sp.Name, f.Name)) {
					match = true
					break
				}
			}
			if !match {
				return true
			}
		}
		sum := t.Summarize()
		if (f.ErrorsOnly && !sum.Error) || sum.Duration < f.MinDuration {
			return true
		}
		out = append(out, sum)
		return len(out) < f.Limit
	})
	return out
}

// Stats returns the number of traces and spans kept.
func (s *TraceStore) Stats() (traces, spans int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.traces), s.spans
}

// Edges returns who calls whom as seen in the stored traces: for every span whose parent
// belongs to another service, an edge parent service → child service, with a count.
func (s *TraceStore) Edges() map[[2]string]int {
	edges := map[[2]string]int{}
	byID := map[string]*Span{}
	s.rangeTraces(func(t *Trace) bool {
		clear(byID)
		for i := range t.Spans {
			byID[t.Spans[i].SpanID] = &t.Spans[i]
		}
		for i := range t.Spans {
			sp := &t.Spans[i]
			if p := byID[sp.ParentID]; p != nil && p.Service != sp.Service {
				edges[[2]string{p.Service, sp.Service}]++
			}
		}
		return true
	})
	return edges
}

// maxOTLPBody bounds an OTLP export request's body.
const maxOTLPBody = 32 << 20

// otlpScratch is what the OTLP handler reuses from one request to the next: the body's
// buffer and the decoder's.
type otlpScratch struct {
	body []byte
	dec  otlpDecoder
}

// OTLPHandler receives OTLP/HTTP trace exports (POST /v1/traces, protobuf) into s.
func (s *TraceStore) OTLPHandler() http.Handler {
	var pool sync.Pool // of *otlpScratch: the decoded spans are views of its buffers
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, fmt.Sprintf("unsupported content type %q: send application/x-protobuf", ct), http.StatusUnsupportedMediaType)
			return
		}
		sc, _ := pool.Get().(*otlpScratch)
		if sc == nil {
			sc = &otlpScratch{dec: otlpDecoder{store: s}}
		}
		body, err := readBody(sc.body[:0], r.Body, r.ContentLength, maxOTLPBody)
		sc.body = body
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errBodyTooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, err.Error(), code)
			return // the scratch is dropped: it may be large
		}
		spans, err := sc.dec.decode(body) // SpansFromOTLP, straight from the wire
		if err == nil {
			s.Add(spans) // copies what it keeps
		}
		sc.dec.reset()
		if cap(sc.body) <= 1<<20 && cap(sc.dec.text) <= 1<<20 && cap(sc.dec.spans) <= 1<<14 {
			pool.Put(sc)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// The response, an empty ExportTraceServiceResponse, is no bytes.
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
}

// errBodyTooLarge is readBody's error for a body over its bound.
var errBodyTooLarge = errors.New("request body too large")

// readBody appends the body r to buf (size: its Content-Length, or -1) and returns it, or
// an error when it is longer than limit bytes.
func readBody(buf []byte, r io.Reader, size int64, limit int) ([]byte, error) {
	if size > int64(limit) {
		return buf, fmt.Errorf("%w: %d bytes, at most %d", errBodyTooLarge, size, limit)
	}
	if size > 0 {
		buf = slices.Grow(buf, int(size)+1) // +1: EOF is read without growing
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(512, cap(buf)))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, fmt.Errorf("%w: more than %d bytes", errBodyTooLarge, limit)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("read the request: %w", err)
		}
	}
}

// SpansFromOTLP flattens an OTLP export request.
func SpansFromOTLP(req *collectortrace.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		service := "unknown"
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := Span{
					TraceID: hex.EncodeToString(sp.GetTraceId()),
					SpanID:  hex.EncodeToString(sp.GetSpanId()),
					Service: service,
					Name:    sp.GetName(),
					Kind:    strings.ToLower(strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_")),
					Start:   time.Unix(0, int64(sp.GetStartTimeUnixNano())),
					End:     time.Unix(0, int64(sp.GetEndTimeUnixNano())),
					Error:   sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Status:  sp.GetStatus().GetMessage(),
				}
				if len(sp.GetParentSpanId()) > 0 {
					s.ParentID = hex.EncodeToString(sp.GetParentSpanId())
				}
				if attrs := sp.GetAttributes(); len(attrs) > 0 {
					s.Attrs = make(map[string]string, len(attrs))
					for _, kv := range attrs {
						s.Attrs[kv.GetKey()] = anyValue(kv.GetValue())
					}
				}
				if canceled(&s) {
					s.Canceled, s.Error = true, false
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	}
	return v.String()
}
