package otlp

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Wire tags of the OTLP fields the encoder writes: (field number << 3) | wire type, where
// the wire type is 0 for varint, 1 for fixed64, 2 for length-delimited and 5 for fixed32.
// Field numbers are those of opentelemetry/proto/{collector/trace,trace,common,resource}/v1.
const (
	tagRequestResourceSpans = 1<<3 | 2 // ExportTraceServiceRequest.resource_spans

	tagResourceSpansResource   = 1<<3 | 2 // ResourceSpans.resource
	tagResourceSpansScopeSpans = 2<<3 | 2 // ResourceSpans.scope_spans
	tagResourceSpansSchemaURL  = 3<<3 | 2 // ResourceSpans.schema_url

	tagResourceAttributes = 1<<3 | 2 // Resource.attributes

	tagScopeSpansScope     = 1<<3 | 2 // ScopeSpans.scope
	tagScopeSpansSpans     = 2<<3 | 2 // ScopeSpans.spans
	tagScopeSpansSchemaURL = 3<<3 | 2 // ScopeSpans.schema_url

	tagScopeName       = 1<<3 | 2 // InstrumentationScope.name
	tagScopeVersion    = 2<<3 | 2 // InstrumentationScope.version
	tagScopeAttributes = 3<<3 | 2 // InstrumentationScope.attributes

	tagSpanTraceID           = 1<<3 | 2  // Span.trace_id
	tagSpanSpanID            = 2<<3 | 2  // Span.span_id
	tagSpanTraceState        = 3<<3 | 2  // Span.trace_state
	tagSpanParentSpanID      = 4<<3 | 2  // Span.parent_span_id
	tagSpanName              = 5<<3 | 2  // Span.name
	tagSpanKind              = 6<<3 | 0  // Span.kind
	tagSpanStartTime         = 7<<3 | 1  // Span.start_time_unix_nano
	tagSpanEndTime           = 8<<3 | 1  // Span.end_time_unix_nano
	tagSpanAttributes        = 9<<3 | 2  // Span.attributes
	tagSpanDroppedAttributes = 10<<3 | 0 // Span.dropped_attributes_count
	tagSpanEvents            = 11<<3 | 2 // Span.events
	tagSpanDroppedEvents     = 12<<3 | 0 // Span.dropped_events_count
	tagSpanLinks             = 13<<3 | 2 // Span.links
	tagSpanDroppedLinks      = 14<<3 | 0 // Span.dropped_links_count
	tagSpanStatus            = 15<<3 | 2 // Span.status
	tagSpanFlags             = 16<<3 | 5 // Span.flags; two bytes as a varint

	tagEventTime              = 1<<3 | 1 // Span.Event.time_unix_nano
	tagEventName              = 2<<3 | 2 // Span.Event.name
	tagEventAttributes        = 3<<3 | 2 // Span.Event.attributes
	tagEventDroppedAttributes = 4<<3 | 0 // Span.Event.dropped_attributes_count

	tagLinkTraceID           = 1<<3 | 2 // Span.Link.trace_id
	tagLinkSpanID            = 2<<3 | 2 // Span.Link.span_id
	tagLinkTraceState        = 3<<3 | 2 // Span.Link.trace_state
	tagLinkAttributes        = 4<<3 | 2 // Span.Link.attributes
	tagLinkDroppedAttributes = 5<<3 | 0 // Span.Link.dropped_attributes_count
	tagLinkFlags             = 6<<3 | 5 // Span.Link.flags

	tagStatusMessage = 2<<3 | 2 // Status.message
	tagStatusCode    = 3<<3 | 0 // Status.code

	tagKeyValueKey   = 1<<3 | 2 // KeyValue.key
	tagKeyValueValue = 2<<3 | 2 // KeyValue.value

	tagAnyString = 1<<3 | 2 // AnyValue.string_value
	tagAnyBool   = 2<<3 | 0 // AnyValue.bool_value
	tagAnyInt    = 3<<3 | 0 // AnyValue.int_value
	tagAnyDouble = 4<<3 | 1 // AnyValue.double_value
	tagAnyArray  = 5<<3 | 2 // AnyValue.array_value
	tagAnyKVList = 6<<3 | 2 // AnyValue.kvlist_value
	tagAnyBytes  = 7<<3 | 2 // AnyValue.bytes_value

	tagListValues = 1<<3 | 2 // ArrayValue.values and KeyValueList.values
)

// Lengths of trace and span ids.
const (
	traceIDLen = len(trace.TraceID{})
	spanIDLen  = len(trace.SpanID{})
)

// Bits of Span.flags and Span.Link.flags above the W3C trace flags
// (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK and SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK).
const (
	flagHasIsRemote = 0x100
	flagIsRemote    = 0x200
)

// encoder turns spans into a serialized ExportTraceServiceRequest. It writes the
// message back to front, into the end of buf: the fields of a message in reverse
// order, each nested message before its length and tag, so that every length is known
// when it is written and the whole request is encoded in one pass, without building
// messages in memory or moving bytes. The output is canonical: fields in field-number
// order, as proto.Marshal writes them. An encoder is reused across batches and is not
// safe for concurrent use.
type encoder struct {
	buf []byte // the request is buf[off:]
	off int

	groups   []group // resource and scope groups in first-seen order
	resOrder []int   // resource index of each group's resource, to sort groups by
	byScope  map[groupKey]int
	spanOf   []int32 // group of each input span, -1 for a nil span
	order    []sdktrace.ReadOnlySpan

	leanGroups []leanGroup // encodeLean's groups and span order
	leanOrder  []*span

	// Used by the Exporter along with the encoded request.
	open atomic.Int32 // request bodies over buf or zbuf that are not closed yet
	zbuf bytes.Buffer // gzipped request
	gz   *gzip.Writer
	resp bytes.Buffer // response body
}

// group is the spans of one instrumentation scope in one resource.
type group struct {
	res      *resource.Resource // the first seen of the equivalent resources
	resKey   attribute.Distinct
	resIndex int // order in which the resource was first seen
	scope    instrumentation.Scope
	count    int
	start    int // first index in encoder.order
}

type groupKey struct {
	res   attribute.Distinct
	scope instrumentation.Scope
}

// mapThreshold is the number of groups beyond which group lookups use a map rather
// than a linear scan.
const mapThreshold = 8

// encode replaces the encoder's output with the request for spans and reports the
// number of spans encoded (nil spans are skipped).
func (e *encoder) encode(spans []sdktrace.ReadOnlySpan) int {
	e.off = len(e.buf)
	n := e.group(spans)
	if n == 0 {
		return 0
	}
	e.prependRequest()
	// Let the spans, resources and scopes be collected while the encoder is idle.
	clear(e.order)
	clear(e.groups)
	clear(e.byScope)
	return n
}

// bytes returns the encoded request.
func (e *encoder) bytes() []byte { return e.buf[e.off:] }

// group sorts spans into resource and scope groups the way the official exporter
// does: resources are told apart by their attribute sets (attribute.Distinct) and
// the first span's resource stands for all of them; scopes are compared whole.
// Groups keep the order in which their resource, then their scope, was first seen,
// and spans keep their order within a group. It returns the number of non-nil spans.
func (e *encoder) group(spans []sdktrace.ReadOnlySpan) int {
	e.groups = e.groups[:0]
	e.spanOf = e.spanOf[:0]
	clear(e.byScope)
	var (
		resources int
		last      = -1
		lastRes   *resource.Resource
		count     int
	)
	for _, s := range spans {
		if s == nil {
			e.spanOf = append(e.spanOf, -1)
			continue
		}
		count++
		res, scope := s.Resource(), s.InstrumentationScope()
		if last >= 0 && res == lastRes && e.groups[last].scope == scope {
			e.groups[last].count++
			e.spanOf = append(e.spanOf, int32(last))
			continue
		}
		key := res.Equivalent()
		g := e.findGroup(key, scope)
		if g < 0 {
			resIndex := resources
			for i := range e.groups {
				if e.groups[i].resKey == key {
					resIndex = e.groups[i].resIndex
					res = e.groups[i].res
					break
				}
			}
			if resIndex == resources {
				resources++
			}
			g = len(e.groups)
			e.groups = append(e.groups, group{res: res, resKey: key, resIndex: resIndex, scope: scope})
			if len(e.groups) > mapThreshold {
				if e.byScope == nil {
					e.byScope = make(map[groupKey]int)
				}
				if len(e.byScope) == 0 {
					for i := range e.groups {
						e.byScope[groupKey{e.groups[i].resKey, e.groups[i].scope}] = i
					}
				} else {
					e.byScope[groupKey{key, scope}] = g
				}
			}
		}
		e.groups[g].count++
		e.spanOf = append(e.spanOf, int32(g))
		last, lastRes = g, s.Resource()
	}
	if count == 0 {
		return 0
	}

	// Order the groups by resource (stable, so scopes keep their first-seen order),
	// then lay the spans out group after group.
	if resources > 1 {
		e.resOrder = e.resOrder[:0]
		for i := range e.groups {
			e.resOrder = append(e.resOrder, i)
		}
		slices.SortStableFunc(e.resOrder, func(a, b int) int {
			return e.groups[a].resIndex - e.groups[b].resIndex
		})
	}
	start := 0
	for i := range e.groups {
		g := i
		if resources > 1 {
			g = e.resOrder[i]
		}
		e.groups[g].start = start
		start += e.groups[g].count
	}
	e.order = slices.Grow(e.order[:0], count)[:count]
	for i, s := range spans {
		g := e.spanOf[i]
		if g < 0 {
			continue
		}
		e.order[e.groups[g].start] = s
		e.groups[g].start++
	}
	// Restore the starts and put the groups themselves in output order.
	for i := range e.groups {
		e.groups[i].start -= e.groups[i].count
	}
	if resources > 1 {
		slices.SortStableFunc(e.groups, func(a, b group) int { return a.resIndex - b.resIndex })
	}
	return count
}

// findGroup returns the index of the group for key and scope, or -1.
func (e *encoder) findGroup(key attribute.Distinct, scope instrumentation.Scope) int {
	if len(e.groups) > mapThreshold {
		if g, ok := e.byScope[groupKey{key, scope}]; ok {
			return g
		}
		return -1
	}
	for i := range e.groups {
		if e.groups[i].resKey == key && e.groups[i].scope == scope {
			return i
		}
	}
	return -1
}

// pos is the number of bytes written so far; the length of a message is the difference
// of pos after and before it.
func (e *encoder) pos() int { return len(e.buf) - e.off }

// reserve makes room for n more bytes in front of the output.
func (e *encoder) reserve(n int) {
	if e.off < n {
		e.grow(n)
	}
}

func (e *encoder) grow(n int) {
	used := len(e.buf) - e.off
	size := max(2*len(e.buf), used+n+1024, 16<<10)
	buf := make([]byte, size)
	copy(buf[size-used:], e.buf[e.off:])
	e.buf, e.off = buf, size-used
}

// The put methods write in front of the output, in room that reserve made.

func (e *encoder) putByte(b byte) {
	e.off--
	e.buf[e.off] = b
}

func (e *encoder) putVarint(v uint64) {
	k := varintSize(v)
	e.off -= k
	b := e.buf[e.off : e.off+k]
	for i := range k - 1 {
		b[i] = byte(v) | 0x80
		v >>= 7
	}
	b[k-1] = byte(v)
}

func (e *encoder) putFixed64(v uint64) {
	e.off -= 8
	binary.LittleEndian.PutUint64(e.buf[e.off:], v)
}

func (e *encoder) putFixed32(v uint32) {
	e.off -= 4
	binary.LittleEndian.PutUint32(e.buf[e.off:], v)
}

// The prepend methods write a whole field in front of the output.

// prependLen writes the tag and length of a length-delimited field whose body is what
// was written since pos was end.
func (e *encoder) prependLen(tag byte, end int) {
	n := e.pos() - end
	e.reserve(1 + binary.MaxVarintLen64)
	e.putVarint(uint64(n))
	e.putByte(tag)
}

// prependBytes writes a length-delimited field, even if s is empty.
func (e *encoder) prependBytes(tag byte, s string) {
	e.reserve(1 + binary.MaxVarintLen64 + len(s))
	e.off -= len(s)
	copy(e.buf[e.off:], s)
	e.putVarint(uint64(len(s)))
	e.putByte(tag)
}

// prependString writes a proto3 string field, unless s is empty.
func (e *encoder) prependString(tag byte, s string) {
	if s != "" {
		e.prependBytes(tag, s)
	}
}

// prependID writes a trace or span id.
func (e *encoder) prependID(tag byte, id []byte) {
	e.reserve(2 + len(id))
	e.off -= len(id)
	copy(e.buf[e.off:], id)
	e.putByte(byte(len(id)))
	e.putByte(tag)
}

// prependVarint writes a proto3 varint field, unless v is zero.
func (e *encoder) prependVarint(tag byte, v uint64) {
	if v != 0 {
		e.reserve(1 + binary.MaxVarintLen64)
		e.putVarint(v)
		e.putByte(tag)
	}
}

// prependFixed64 writes a proto3 fixed64 field, unless v is zero.
func (e *encoder) prependFixed64(tag byte, v uint64) {
	if v != 0 {
		e.reserve(9)
		e.putFixed64(v)
		e.putByte(tag)
	}
}

// prependCount writes a proto3 uint32 count field, clamped, unless it is zero.
func (e *encoder) prependCount(tag byte, n int) {
	e.prependVarint(tag, uint64(clampUint32(n)))
}

func (e *encoder) prependRequest() {
	for i := len(e.groups); i > 0; {
		// The groups of a resource are contiguous: groups[j:i].
		j := i - 1
		for j > 0 && e.groups[j-1].resIndex == e.groups[i-1].resIndex {
			j--
		}
		end := e.pos()
		res := e.groups[j].res
		e.prependString(tagResourceSpansSchemaURL, res.SchemaURL())
		for k := i - 1; k >= j; k-- {
			e.prependScopeSpans(&e.groups[k])
		}
		if res != nil {
			rend := e.pos()
			set := res.Set()
			for k := set.Len() - 1; k >= 0; k-- {
				kv, _ := set.Get(k)
				e.prependKeyValue(tagResourceAttributes, kv)
			}
			e.prependLen(tagResourceSpansResource, rend)
		}
		e.prependLen(tagRequestResourceSpans, end)
		i = j
	}
}

func (e *encoder) prependScopeSpans(g *group) {
	end := e.pos()
	e.prependString(tagScopeSpansSchemaURL, g.scope.SchemaURL)
	for k := g.start + g.count - 1; k >= g.start; k-- {
		e.prependSpan(e.order[k])
	}
	e.prependScope(g.scope)
	e.prependLen(tagResourceSpansScopeSpans, end)
}

func (e *encoder) prependSpan(s sdktrace.ReadOnlySpan) {
	e.prependFields(&spanFields{
		sc:            s.SpanContext(),
		parent:        s.Parent(),
		name:          s.Name(),
		kind:          s.SpanKind(),
		start:         s.StartTime(),
		end:           s.EndTime(),
		attrs:         s.Attributes(),
		droppedAttrs:  s.DroppedAttributes(),
		events:        s.Events(),
		droppedEvents: s.DroppedEvents(),
		links:         s.Links(),
		droppedLinks:  s.DroppedLinks(),
		status:        s.Status(),
	})
}

// spanFields is what the encoder writes of a span.
type spanFields struct {
	sc, parent    trace.SpanContext
	name          string
	kind          trace.SpanKind
	start, end    time.Time
	attrs         []attribute.KeyValue
	droppedAttrs  int
	events        []sdktrace.Event
	droppedEvents int
	links         []sdktrace.Link
	droppedLinks  int
	status        sdktrace.Status
}

// prependFields writes a ScopeSpans.spans field.
func (e *encoder) prependFields(s *spanFields) {
	end := e.pos()
	sc, parent := s.sc, s.parent

	e.reserve(6)
	e.putFixed32(spanFlags(sc.TraceFlags(), parent))
	e.putByte(tagSpanFlags >> 7)
	e.putByte(tagSpanFlags&0x7f | 0x80)

	st := s.status
	send := e.pos()
	e.prependVarint(tagStatusCode, statusCode(st.Code))
	e.prependString(tagStatusMessage, st.Description)
	e.prependLen(tagSpanStatus, send)

	e.prependCount(tagSpanDroppedLinks, s.droppedLinks)
	links := s.links
	for i := len(links) - 1; i >= 0; i-- {
		e.prependLink(&links[i])
	}
	e.prependCount(tagSpanDroppedEvents, s.droppedEvents)
	events := s.events
	for i := len(events) - 1; i >= 0; i-- {
		e.prependEvent(&events[i])
	}
	e.prependCount(tagSpanDroppedAttributes, s.droppedAttrs)
	attrs := s.attrs
	for i := len(attrs) - 1; i >= 0; i-- {
		e.prependKeyValue(tagSpanAttributes, attrs[i])
	}
	e.prependFixed64(tagSpanEndTime, unixNano(s.end))
	e.prependFixed64(tagSpanStartTime, unixNano(s.start))
	e.prependVarint(tagSpanKind, spanKind(s.kind))
	e.prependString(tagSpanName, s.name)
	if psid := parent.SpanID(); psid.IsValid() {
		e.prependID(tagSpanParentSpanID, psid[:])
	}
	e.prependTraceState(tagSpanTraceState, sc.TraceState())
	sid, tid := sc.SpanID(), sc.TraceID()
	e.prependID(tagSpanSpanID, sid[:])
	e.prependID(tagSpanTraceID, tid[:])
	e.prependLen(tagScopeSpansSpans, end)
}

func (e *encoder) prependEvent(ev *sdktrace.Event) {
	end := e.pos()
	e.prependCount(tagEventDroppedAttributes, ev.DroppedAttributeCount)
	for i := len(ev.Attributes) - 1; i >= 0; i-- {
		e.prependKeyValue(tagEventAttributes, ev.Attributes[i])
	}
	e.prependString(tagEventName, ev.Name)
	e.prependFixed64(tagEventTime, unixNano(ev.Time))
	e.prependLen(tagSpanEvents, end)
}

func (e *encoder) prependLink(l *sdktrace.Link) {
	end := e.pos()
	e.reserve(5)
	e.putFixed32(spanFlags(l.SpanContext.TraceFlags(), l.SpanContext))
	e.putByte(tagLinkFlags)
	e.prependCount(tagLinkDroppedAttributes, l.DroppedAttributeCount)
	for i := len(l.Attributes) - 1; i >= 0; i-- {
		e.prependKeyValue(tagLinkAttributes, l.Attributes[i])
	}
	e.prependTraceState(tagLinkTraceState, l.SpanContext.TraceState())
	sid, tid := l.SpanContext.SpanID(), l.SpanContext.TraceID()
	e.prependID(tagLinkSpanID, sid[:])
	e.prependID(tagLinkTraceID, tid[:])
	e.prependLen(tagSpanLinks, end)
}

// traceStateLen is the length of ts.String(), computed without building the string.
func traceStateLen(ts trace.TraceState) int {
	n := 0
	ts.Walk(func(k, v string) bool {
		n += len(k) + len(v) + 2 // "=" and ","
		return true
	})
	if n > 0 {
		n-- // no "," after the last member
	}
	return n
}

// prependTraceState writes ts.String() as a string field, if it is not empty, without
// building the string.
func (e *encoder) prependTraceState(tag byte, ts trace.TraceState) {
	if ts.Len() == 0 {
		return
	}
	n := traceStateLen(ts)
	e.reserve(1 + binary.MaxVarintLen64 + n)
	e.off -= n
	b := e.buf[e.off : e.off+n]
	i := 0
	ts.Walk(func(k, v string) bool {
		if i > 0 {
			b[i] = ','
			i++
		}
		i += copy(b[i:], k)
		b[i] = '='
		i++
		i += copy(b[i:], v)
		return true
	})
	e.putVarint(uint64(n))
	e.putByte(tag)
}

// statusCode maps a status code as the official exporter does: anything other than Ok
// and Error is Unset.
func statusCode(c codes.Code) uint64 {
	switch c {
	case codes.Ok:
		return 1 // STATUS_CODE_OK
	case codes.Error:
		return 2 // STATUS_CODE_ERROR
	default:
		return 0 // STATUS_CODE_UNSET
	}
}

// spanKind maps a span kind to Span.SpanKind; unknown kinds are SPAN_KIND_UNSPECIFIED.
func spanKind(k trace.SpanKind) uint64 {
	switch k {
	case trace.SpanKindInternal:
		return 1
	case trace.SpanKindServer:
		return 2
	case trace.SpanKindClient:
		return 3
	case trace.SpanKindProducer:
		return 4
	case trace.SpanKindConsumer:
		return 5
	default:
		return 0
	}
}

// spanFlags is Span.flags (and Span.Link.flags) as the official exporter sets them:
// the W3C trace flags in the low byte, HAS_IS_REMOTE always, and IS_REMOTE when sc
// (the parent of a span, or the linked span context) is remote.
func spanFlags(tf trace.TraceFlags, sc trace.SpanContext) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if sc.IsRemote() {
		f |= flagIsRemote
	}
	return f
}

// unixNano is t in nanoseconds since the Unix epoch, or 0 for times before it.
func unixNano(t time.Time) uint64 {
	return uint64(max(0, t.UnixNano())) // #nosec G115 -- not negative
}

// clampUint32 clamps a count to the range of a uint32.
func clampUint32(v int) uint32 {
	if v < 0 {
		return 0
	}
	if int64(v) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(v)
}

// prependKeyValue writes a KeyValue field.
func (e *encoder) prependKeyValue(tag byte, kv attribute.KeyValue) {
	end := e.pos()
	e.prependValue(kv.Value)
	e.prependLen(tagKeyValueValue, end)
	e.prependString(tagKeyValueKey, string(kv.Key))
	e.prependLen(tag, end)
}

// prependValue writes the body of an AnyValue holding v. AnyValue.value is a oneof, so
// zero values are written too.
func (e *encoder) prependValue(v attribute.Value) {
	switch v.Type() {
	case attribute.EMPTY:
	case attribute.BOOL:
		e.reserve(2)
		e.putByte(boolByte(v.AsBool()))
		e.putByte(tagAnyBool)
	case attribute.INT64:
		e.reserve(1 + binary.MaxVarintLen64)
		e.putVarint(uint64(v.AsInt64())) // #nosec G115 -- two's complement, as protobuf does
		e.putByte(tagAnyInt)
	case attribute.FLOAT64:
		e.reserve(9)
		e.putFixed64(math.Float64bits(v.AsFloat64()))
		e.putByte(tagAnyDouble)
	case attribute.STRING:
		e.prependBytes(tagAnyString, v.AsString())
	case attribute.BYTESLICE:
		// AsString returns the bytes of a BYTESLICE without copying them.
		e.prependBytes(tagAnyBytes, v.AsString())
	case attribute.BOOLSLICE:
		end := e.pos()
		xs := v.AsBoolSlice()
		e.reserve(4 * len(xs))
		for i := len(xs) - 1; i >= 0; i-- {
			e.putByte(boolByte(xs[i]))
			e.putByte(tagAnyBool)
			e.putByte(2)
			e.putByte(tagListValues)
		}
		e.prependLen(tagAnyArray, end)
	case attribute.INT64SLICE:
		end := e.pos()
		xs := v.AsInt64Slice()
		e.reserve((3 + binary.MaxVarintLen64) * len(xs))
		for i := len(xs) - 1; i >= 0; i-- {
			x := uint64(xs[i]) // #nosec G115
			e.putVarint(x)
			e.putByte(tagAnyInt)
			e.putByte(byte(1 + varintSize(x)))
			e.putByte(tagListValues)
		}
		e.prependLen(tagAnyArray, end)
	case attribute.FLOAT64SLICE:
		end := e.pos()
		xs := v.AsFloat64Slice()
		e.reserve(11 * len(xs))
		for i := len(xs) - 1; i >= 0; i-- {
			e.putFixed64(math.Float64bits(xs[i]))
			e.putByte(tagAnyDouble)
			e.putByte(9)
			e.putByte(tagListValues)
		}
		e.prependLen(tagAnyArray, end)
	case attribute.STRINGSLICE:
		end := e.pos()
		xs := v.AsStringSlice()
		for i := len(xs) - 1; i >= 0; i-- {
			xend := e.pos()
			e.prependBytes(tagAnyString, xs[i])
			e.prependLen(tagListValues, xend)
		}
		e.prependLen(tagAnyArray, end)
	case attribute.SLICE:
		end := e.pos()
		xs := v.AsSlice()
		for i := len(xs) - 1; i >= 0; i-- {
			xend := e.pos()
			e.prependValue(xs[i])
			e.prependLen(tagListValues, xend)
		}
		e.prependLen(tagAnyArray, end)
	case attribute.MAP:
		end := e.pos()
		kvs := v.AsMap()
		for i := len(kvs) - 1; i >= 0; i-- {
			e.prependKeyValue(tagListValues, kvs[i])
		}
		e.prependLen(tagAnyKVList, end)
	default:
		e.prependBytes(tagAnyString, "INVALID")
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// varintSize is the number of bytes of v as a varint (protowire.SizeVarint).
func varintSize(v uint64) int {
	return int(9*uint32(bits.Len64(v|1))+64) / 64
}
