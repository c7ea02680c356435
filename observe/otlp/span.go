package otlp

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// span is a recording span of a [TracerProvider]. Its fields are guarded by mu until
// End; after End nothing writes them any more (every mutator checks ended first), so
// the export goroutine, which receives the span through the provider's queue, reads
// them without the lock. It is kept small (what is rare lives in extra), since its size
// is most of what a span costs: allocation and garbage collection.
type span struct {
	embedded.Span

	tracer *tracer
	sc     trace.SpanContext // immutable
	psid   trace.SpanID      // the parent's span id; immutable

	mu     sync.Mutex
	remote bool // the parent is remote; immutable
	ended  bool
	dirty  bool // attrs may hold duplicate keys
	// shared: attrs is the caller's slice of StartSpanShared, read-only (its capacity is
	// its length, so an append copies); own copies it before any write in place.
	shared bool
	// droppedAttrs counts the attributes dropped by the limits, saturating; an int32
	// beside the flags keeps the span in the 224-byte size class, not the 240-byte one.
	droppedAttrs int32
	kind         trace.SpanKind
	name         string
	start        time.Time
	dur          time.Duration // set by End
	status       sdktrace.Status

	attrs []attribute.KeyValue
	extra *spanExtra // events and links, nil until the first
}

// spanExtra is the events and links of a span.
type spanExtra struct {
	events       []sdktrace.Event
	droppedEvs   int
	links        []sdktrace.Link
	droppedLinks int
}

// more returns s.extra, allocating it.
func (s *span) more() *spanExtra {
	if s.extra == nil {
		s.extra = new(spanExtra)
	}
	return s.extra
}

var _ trace.Span = (*span)(nil)

// SpanContext returns the span's context; it stays valid after End.
func (s *span) SpanContext() trace.SpanContext { return s.sc }

// IsRecording reports whether the span has not ended yet.
func (s *span) IsRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

// TracerProvider returns the provider that created the span.
func (s *span) TracerProvider() trace.TracerProvider { return s.tracer.p }

// SetStatus sets the status with the SDK's precedence (Unset < Error < Ok): a status
// replaces one of the same or a lower rank, so Ok is final and Unset never replaces
// Error; only an Error keeps its description.
func (s *span) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.status.Code > code {
		return
	}
	st := sdktrace.Status{Code: code}
	if code == codes.Error {
		st.Description = description
	}
	s.status = st
}

// SetName renames the span.
func (s *span) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.name = name
	}
}

// SetAttributes sets attributes; a key set again keeps its first position and takes the
// last value. Beyond the attribute count limit new keys are dropped and counted, as in
// the SDK.
func (s *span) SetAttributes(kvs ...attribute.KeyValue) {
	if len(kvs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.setAttributes(kvs)
}

// dropAttrs counts n dropped attributes.
func (s *span) dropAttrs(n int) {
	s.droppedAttrs = int32(min(int64(s.droppedAttrs)+int64(n), math.MaxInt32))
}

// setAttributes is SetAttributes with s.mu held.
func (s *span) setAttributes(kvs []attribute.KeyValue) {
	lim := &s.tracer.p.limits
	limit := lim.AttributeCountLimit
	if limit == 0 {
		s.dropAttrs(len(kvs))
		return
	}
	if limit > 0 && len(s.attrs)+len(kvs) > limit {
		s.addOverCap(limit, kvs)
		return
	}
	if s.attrs == nil {
		s.attrs = make([]attribute.KeyValue, 0, len(kvs))
	}
	s.own(len(kvs))
	for _, a := range kvs {
		if !a.Valid() {
			s.dropAttrs(1)
			continue
		}
		if t := a.Value.Type(); lim.AttributeValueLengthLimit >= 0 || t == attribute.SLICE || t == attribute.MAP {
			a = s.normAttr(a)
		}
		s.attrs = append(s.attrs, a)
		s.dirty = s.dirty || len(s.attrs) > 1
	}
}

// addOverCap adds kvs when they may exceed limit: it deduplicates first, replaces the
// values of keys already set, and drops new keys once limit is reached.
func (s *span) addOverCap(limit int, kvs []attribute.KeyValue) {
	s.own(len(kvs))
	s.dedup()
	for _, a := range kvs {
		if !a.Valid() {
			s.dropAttrs(1)
			continue
		}
		if i := s.indexOf(a.Key); i >= 0 {
			s.attrs[i] = s.normAttr(a)
			continue
		}
		if len(s.attrs) >= limit {
			s.dropAttrs(1)
			continue
		}
		s.attrs = append(s.attrs, s.normAttr(a))
	}
}

// indexOf returns the index of key in the deduplicated attributes, or -1.
func (s *span) indexOf(key attribute.Key) int {
	for i := range s.attrs {
		if s.attrs[i].Key == key {
			return i
		}
	}
	return -1
}

// own makes attrs the span's own slice if it is the caller's, before a write in place.
func (s *span) own(extra int) {
	if s.shared {
		s.attrs = append(make([]attribute.KeyValue, 0, len(s.attrs)+extra), s.attrs...)
		s.shared = false
	}
}

// setShared sets kvs, the first attributes of a new span, without copying them when
// that keeps what the span records the same: every attribute valid, none to normalize,
// within the count limit. The span then only reads kvs. It reports whether it did.
func (s *span) setShared(kvs []attribute.KeyValue) bool {
	lim := &s.tracer.p.limits
	if lim.AttributeValueLengthLimit >= 0 || lim.AttributeCountLimit >= 0 && len(kvs) > lim.AttributeCountLimit {
		return false
	}
	dirty := false
	for i, a := range kvs {
		if !a.Valid() {
			return false
		}
		if t := a.Value.Type(); t == attribute.SLICE || t == attribute.MAP {
			return false
		}
		for _, b := range kvs[:i] {
			dirty = dirty || b.Key == a.Key
		}
	}
	s.attrs = kvs[:len(kvs):len(kvs)]
	s.shared = true
	s.dirty = dirty
	return true
}

// dedup removes duplicate keys: each key keeps the position where it was first set and
// the value it was last set to, as the SDK's snapshot does.
func (s *span) dedup() {
	if !s.dirty {
		return
	}
	s.dirty = false
	s.own(0)
	if len(s.attrs) <= 16 {
		unique := s.attrs[:0]
		for _, a := range s.attrs {
			found := false
			for i := range unique {
				if unique[i].Key == a.Key {
					unique[i] = a
					found = true
					break
				}
			}
			if !found {
				unique = append(unique, a)
			}
		}
		clear(s.attrs[len(unique):])
		s.attrs = unique
		return
	}
	seen := make(map[attribute.Key]int, len(s.attrs))
	unique := s.attrs[:0]
	for _, a := range s.attrs {
		if i, ok := seen[a.Key]; ok {
			unique[i] = a
			continue
		}
		seen[a.Key] = len(unique)
		unique = append(unique, a)
	}
	clear(s.attrs[len(unique):])
	s.attrs = unique
}

// AddEvent adds an event; beyond the event count limit the oldest is dropped and
// counted, as in the SDK.
func (s *span) AddEvent(name string, opts ...trace.EventOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.addEvent(name, opts...)
}

func (s *span) addEvent(name string, opts ...trace.EventOption) {
	c := trace.NewEventConfig(opts...)
	s.appendEvent(sdktrace.Event{Name: name, Attributes: normAttrs(c.Attributes(), s.tracer.p.limits.AttributeValueDepthLimit), Time: c.Timestamp()})
}

// appendEvent adds ev within the span limits.
func (s *span) appendEvent(ev sdktrace.Event) {
	if limit := s.tracer.p.limits.AttributePerEventCountLimit; limit == 0 {
		ev.DroppedAttributeCount, ev.Attributes = len(ev.Attributes), nil
	} else if limit > 0 && len(ev.Attributes) > limit {
		ev.DroppedAttributeCount = len(ev.Attributes) - limit
		ev.Attributes = ev.Attributes[:limit]
	}
	x := s.more()
	x.events = evict(x.events, ev, s.tracer.p.limits.EventCountLimit, &x.droppedEvs)
}

// RecordError adds an exception event for err, with its stack if asked.
func (s *span) RecordError(err error, opts ...trace.EventOption) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if len(opts) == 0 {
		// The common case, without the options' closures: the event the SDK records.
		attrs := []attribute.KeyValue{semconv.ExceptionType(typeStr(err)), semconv.ExceptionMessage(err.Error())}
		s.appendEvent(sdktrace.Event{Name: semconv.ExceptionEventName, Attributes: attrs, Time: time.Now()})
		return
	}
	opts = append(opts, trace.WithAttributes(
		semconv.ExceptionType(typeStr(err)),
		semconv.ExceptionMessage(err.Error()),
	))
	if c := trace.NewEventConfig(opts...); c.StackTrace() {
		opts = append(opts, trace.WithAttributes(semconv.ExceptionStacktrace(stackTrace())))
	}
	s.addEvent(semconv.ExceptionEventName, opts...)
}

// AddLink adds a link; beyond the link count limit the oldest is dropped and counted.
// A link with an invalid span context, no attributes and no trace state is ignored.
func (s *span) AddLink(l trace.Link) {
	if !l.SpanContext.IsValid() && len(l.Attributes) == 0 && l.SpanContext.TraceState().Len() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.addLink(l)
	}
}

func (s *span) addLink(l trace.Link) {
	sl := sdktrace.Link{SpanContext: l.SpanContext, Attributes: normAttrs(l.Attributes, s.tracer.p.limits.AttributeValueDepthLimit)}
	if limit := s.tracer.p.limits.AttributePerLinkCountLimit; limit == 0 {
		sl.DroppedAttributeCount, sl.Attributes = len(sl.Attributes), nil
	} else if limit > 0 && len(sl.Attributes) > limit {
		sl.DroppedAttributeCount = len(sl.Attributes) - limit
		sl.Attributes = sl.Attributes[:limit]
	}
	x := s.more()
	x.links = evict(x.links, sl, s.tracer.p.limits.LinkCountLimit, &x.droppedLinks)
}

// evict appends v to q, dropping (and counting) the oldest element at capacity, as the
// SDK's evicted queue does.
func evict[T any](q []T, v T, capacity int, dropped *int) []T {
	if capacity == 0 {
		*dropped++
		return q
	}
	if capacity > 0 && len(q) == capacity {
		copy(q, q[1:])
		q = q[:capacity-1]
		*dropped++
	}
	return append(q, v)
}

// StartTime returns when the span started.
func (s *span) StartTime() time.Time { return s.start }

// End ends the span and queues it for export if it is sampled. Later calls do nothing.
// Called while a panic unwinds (deferred), it records the panic as an exception event
// and lets it continue, as the SDK does.
func (s *span) End(opts ...trace.SpanEndOption) {
	dur := time.Since(s.start) // monotonic, as the SDK
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	var cfg trace.SpanConfig
	if len(opts) > 0 {
		cfg = trace.NewSpanEndConfig(opts...)
	}
	if recovered := recover(); recovered != nil {
		defer panic(recovered)
		eo := []trace.EventOption{trace.WithAttributes(
			semconv.ExceptionType(typeStr(recovered)),
			semconv.ExceptionMessage(fmt.Sprint(recovered)),
		)}
		if cfg.StackTrace() {
			eo = append(eo, trace.WithAttributes(semconv.ExceptionStacktrace(stackTrace())))
		}
		s.addEvent(semconv.ExceptionEventName, eo...)
	}
	if t := cfg.Timestamp(); !t.IsZero() {
		dur = t.Sub(s.start)
	}
	s.dur = dur
	s.ended = true
	s.dedup()
	s.mu.Unlock()
	if s.sc.IsSampled() {
		s.tracer.p.enqueue(s)
	}
}

// typeStr is the type name of an error or panic value, as the SDK writes it.
func typeStr(i any) string {
	t := reflect.TypeOf(i)
	if t == nil {
		return "<nil>"
	}
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// stackTrace is the calling goroutine's stack, at most 2 KiB as in the SDK.
func stackTrace() string {
	b := make([]byte, 2048)
	return string(b[:runtime.Stack(b, false)])
}

// normAttr normalizes a span attribute as the SDK does: nested SLICE and MAP values by
// normValue, then string values cut at the length limit (negative: no limit).
func (s *span) normAttr(kv attribute.KeyValue) attribute.KeyValue {
	lim := &s.tracer.p.limits
	if t := kv.Value.Type(); t == attribute.SLICE || t == attribute.MAP {
		kv.Value, _ = normValue(kv.Value, lim.AttributeValueDepthLimit)
	}
	if lim.AttributeValueLengthLimit >= 0 {
		kv.Value, _ = truncateValue(lim.AttributeValueLengthLimit, kv.Value)
	}
	return kv
}

// truncateString returns s cut to at most limit UTF-8 characters, dropping invalid
// bytes as the SDK does.
func truncateString(limit int, s string) string {
	var b []byte
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if b == nil {
				b = append(make([]byte, 0, len(s)), s[:i]...)
			}
			i++
			continue
		}
		if n == limit {
			if b == nil {
				return s[:i]
			}
			return string(b)
		}
		if b != nil {
			b = append(b, s[i:i+size]...)
		}
		n++
		i += size
	}
	if b == nil {
		return s
	}
	return string(b)
}

// nonRecordingSpan is the span of an unsampled call: a valid span context, nothing else.
type nonRecordingSpan struct {
	embedded.Span
	p  *TracerProvider
	sc trace.SpanContext
}

var _ trace.Span = (*nonRecordingSpan)(nil)

func (s *nonRecordingSpan) SpanContext() trace.SpanContext        { return s.sc }
func (*nonRecordingSpan) IsRecording() bool                       { return false }
func (*nonRecordingSpan) SetStatus(codes.Code, string)            {}
func (*nonRecordingSpan) SetAttributes(...attribute.KeyValue)     {}
func (*nonRecordingSpan) End(...trace.SpanEndOption)              {}
func (*nonRecordingSpan) RecordError(error, ...trace.EventOption) {}
func (*nonRecordingSpan) AddEvent(string, ...trace.EventOption)   {}
func (*nonRecordingSpan) AddLink(trace.Link)                      {}
func (*nonRecordingSpan) SetName(string)                          {}
func (s *nonRecordingSpan) TracerProvider() trace.TracerProvider  { return s.p }
