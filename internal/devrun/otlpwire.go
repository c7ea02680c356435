package devrun

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The collector decodes OTLP export requests straight from the protobuf wire into Spans:
// the generated types' Unmarshal built every message, attribute and value as an object
// first, which was most of svckit dev's CPU per span. Only the fields SpansFromOTLP reads
// are decoded; the rest is skipped, as proto.Unmarshal keeps unknown fields.

// errOTLPWire is the error of a request that is not a well-formed OTLP export request.
var errOTLPWire = errors.New("malformed OTLP request")

// Field numbers of the OTLP messages read here (opentelemetry-proto, trace/v1 and
// common/v1).
const (
	fieldRequestResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	fieldResourceSpansResource   = 1 // ResourceSpans.resource
	fieldResourceSpansScopeSpans = 2 // ResourceSpans.scope_spans
	fieldResourceAttributes      = 1 // Resource.attributes
	fieldScopeSpansSpans         = 2 // ScopeSpans.spans

	fieldSpanTraceID      = 1
	fieldSpanSpanID       = 2
	fieldSpanParentSpanID = 4
	fieldSpanName         = 5
	fieldSpanKind         = 6
	fieldSpanStart        = 7
	fieldSpanEnd          = 8
	fieldSpanAttributes   = 9
	fieldSpanStatus       = 15

	fieldStatusMessage = 2
	fieldStatusCode    = 3

	fieldKeyValueKey   = 1
	fieldKeyValueValue = 2

	fieldAnyString = 1
	fieldAnyBool   = 2
	fieldAnyInt    = 3
	fieldAnyDouble = 4
)

// decodeOTLPSpans returns the spans of an ExportTraceServiceRequest in its protobuf
// encoding, as SpansFromOTLP does for the decoded message. Their strings are views of b
// (see otlpDecoder).
func decodeOTLPSpans(b []byte) ([]Span, error) {
	var d otlpDecoder
	return d.decode(b)
}

// otlpDecoder decodes export requests into Spans without a copy per string: names,
// attributes and statuses are views of the request's bytes, and ids and formatted numbers
// views of the decoder's text buffer. TraceStore.Add copies what it keeps, so a decoder
// and the request's buffer are reused for the next request once the spans are stored
// (reset). What the spans were decoded from must not change while they are used.
//
// With a store, a span whose attributes' bytes are those of a set the store shares gets
// the store's map without decoding them (Span.shared); each look-up in the store's raw
// sets takes its read lock (not the whole request's decoding, which may be long).
type otlpDecoder struct {
	spans []Span
	pairs []attrPair // the spans' attributes, each span's a piece of it
	text  []byte     // hex ids and formatted numbers
	store *TraceStore
}

// reset forgets the spans of the last request, keeping the buffers.
func (d *otlpDecoder) reset() {
	clear(d.spans) // no pointers into the last request stay reachable from here
	clear(d.pairs)
	d.spans, d.pairs, d.text = d.spans[:0], d.pairs[:0], d.text[:0]
}

// decode returns the spans of the request b, after the spans decoded since the last reset.
func (d *otlpDecoder) decode(b []byte) ([]Span, error) {
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == fieldRequestResourceSpans && typ == protowire.BytesType {
			return d.resourceSpans(v)
		}
		return nil
	})
	return d.spans, err
}

// view returns b as a string without copying it.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// hex returns v in hexadecimal, in d.text.
func (d *otlpDecoder) hex(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	n := len(d.text)
	d.text = hex.AppendEncode(d.text, v)
	return view(d.text[n:])
}

// resourceSpans appends the spans of one ResourceSpans to d.spans.
func (d *otlpDecoder) resourceSpans(b []byte) error {
	first := len(d.spans)
	service := "unknown"
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldResourceSpansResource:
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != fieldResourceAttributes || typ != protowire.BytesType {
					return nil
				}
				k, val, err := d.keyValue(v)
				if err != nil {
					return err
				}
				if k == "service.name" {
					service = val.str
					if val.kind != fieldAnyString {
						service = "" // GetStringValue of another kind of value
					}
				}
				return nil
			})
		case fieldResourceSpansScopeSpans:
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != fieldScopeSpansSpans || typ != protowire.BytesType {
					return nil
				}
				return d.span(v)
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := first; i < len(d.spans); i++ { // the resource may follow its spans on the wire
		d.spans[i].Service = service
	}
	return nil
}

// span decodes one Span message and appends it to d.spans.
func (d *otlpDecoder) span(b []byte) error {
	d.spans = append(d.spans, Span{})
	s := &d.spans[len(d.spans)-1]
	var kind uint64
	var start, end uint64
	var code uint64
	nattrs := 0
	from, to, run := 0, 0, true // the attributes' fields: b[from:to] when they are one run
	err := eachFieldAt(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, fieldStart, fieldEnd int) error {
		if num == fieldSpanAttributes && typ == protowire.BytesType {
			if nattrs == 0 {
				from = fieldStart
			} else if fieldStart != to {
				run = false
			}
			to = fieldEnd
		}
		switch {
		case num == fieldSpanTraceID && typ == protowire.BytesType:
			s.TraceID = d.hex(v)
		case num == fieldSpanSpanID && typ == protowire.BytesType:
			s.SpanID = d.hex(v)
		case num == fieldSpanParentSpanID && typ == protowire.BytesType:
			s.ParentID = d.hex(v) // "" when empty
		case num == fieldSpanName && typ == protowire.BytesType:
			name, err := wireString(v)
			s.Name = name
			return err
		case num == fieldSpanKind && typ == protowire.VarintType:
			kind = x
		case num == fieldSpanStart && typ == protowire.Fixed64Type:
			start = x
		case num == fieldSpanEnd && typ == protowire.Fixed64Type:
			end = x
		case num == fieldSpanAttributes && typ == protowire.BytesType:
			nattrs++
		case num == fieldSpanStatus && typ == protowire.BytesType:
			// A message field seen twice merges: later fields win one by one.
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch {
				case num == fieldStatusMessage && typ == protowire.BytesType:
					msg, err := wireString(v)
					s.Status = msg
					return err
				case num == fieldStatusCode && typ == protowire.VarintType:
					code = x
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	var set rawAttrSet // m is nil unless the store has the set
	if nattrs > 0 && run && d.store != nil && to-from <= maxRawSet {
		raw := b[from:to]
		h := maphash.Bytes(d.store.seed, raw)
		d.store.mu.RLock()
		if p := d.store.lookupRawLocked(h, raw); p != nil {
			set = *p // a copy: the store may forget the set once unlocked
		}
		d.store.mu.RUnlock()
		if set.m != nil {
			s.Attrs, s.shared = set.m, true // the same bytes as a set the store holds: valid
		} else {
			s.raw, s.rawHash = raw, h
		}
	}
	if nattrs > 0 && set.m == nil {
		// As pairs: TraceStore.Add finds the map of a set it holds already (most spans
		// repeat one) without building one per span; spanAttrs builds it for others.
		first := len(d.pairs)
		d.pairs = slices.Grow(d.pairs, nattrs)
		err = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num != fieldSpanAttributes || typ != protowire.BytesType {
				return nil
			}
			k, val, err := d.keyValue(v)
			if err != nil {
				return err
			}
			d.pairs = append(d.pairs, attrPair{k, val.str})
			return nil
		})
		if err != nil {
			return err
		}
		s.pairs = d.pairs[first:len(d.pairs):len(d.pairs)]
	}
	s.Kind = spanKind(int32(kind))
	s.Start, s.End = time.Unix(0, int64(start)), time.Unix(0, int64(end))
	s.Error = int32(code) == int32(tracepb.Status_STATUS_CODE_ERROR)
	if set.m != nil && (set.canceled || canceledStatus(s.Status)) || set.m == nil && canceled(s) {
		s.Canceled, s.Error = true, false
	}
	return nil
}

// spanAttrs moves the pairs of spans decoded by decodeOTLPSpans into their Attrs maps,
// for callers other than TraceStore.Add.
func spanAttrs(spans []Span) {
	for i := range spans {
		sp := &spans[i]
		if sp.Attrs == nil && len(sp.pairs) > 0 {
			sp.Attrs = make(map[string]string, len(sp.pairs))
			for _, p := range sp.pairs {
				sp.Attrs[p.k] = p.v
			}
		}
		sp.pairs = nil
	}
}

// spanKinds are the span kinds' names as SpansFromOTLP writes them.
var spanKinds = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

func spanKind(k int32) string {
	if k >= 0 && int(k) < len(spanKinds) {
		return spanKinds[k]
	}
	return strings.ToLower(strings.TrimPrefix(tracepb.Span_SpanKind(k).String(), "SPAN_KIND_"))
}

// wireValue is an AnyValue as a string, as anyValue writes it, and which kind it was.
type wireValue struct {
	str  string
	kind protowire.Number // fieldAnyString … fieldAnyDouble, or 0 for others
}

// keyValue decodes one KeyValue message.
func (d *otlpDecoder) keyValue(b []byte) (string, wireValue, error) {
	var key string
	val := wireValue{str: "<nil>"} // anyValue of a missing value
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		var err error
		switch num {
		case fieldKeyValueKey:
			key, err = wireString(v)
		case fieldKeyValueValue:
			val, err = d.anyValue(v)
		}
		return err
	})
	return key, val, err
}

// anyValue returns an AnyValue as anyValue does. Values other than strings, booleans,
// integers and doubles (arrays, lists of key-values, bytes), rare on spans, go through the
// generated type.
func (d *otlpDecoder) anyValue(b []byte) (wireValue, error) {
	var val wireValue
	other := false
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == fieldAnyString && typ == protowire.BytesType:
			s, err := wireString(v)
			val = wireValue{str: s, kind: fieldAnyString}
			return err
		case num == fieldAnyBool && typ == protowire.VarintType:
			val = wireValue{str: strconv.FormatBool(x != 0), kind: fieldAnyBool}
		case num == fieldAnyInt && typ == protowire.VarintType:
			n := len(d.text)
			d.text = strconv.AppendInt(d.text, int64(x), 10)
			val = wireValue{str: view(d.text[n:]), kind: fieldAnyInt}
		case num == fieldAnyDouble && typ == protowire.Fixed64Type:
			val = wireValue{str: fmt.Sprint(math.Float64frombits(x)), kind: fieldAnyDouble}
		default:
			other = true
		}
		return nil
	})
	if err != nil || !other {
		return val, err
	}
	var m commonpb.AnyValue
	if err := proto.Unmarshal(b, &m); err != nil {
		return val, fmt.Errorf("%w: %w", errOTLPWire, err)
	}
	val = wireValue{str: anyValue(&m)}
	if _, ok := m.GetValue().(*commonpb.AnyValue_StringValue); ok {
		val.kind = fieldAnyString
	}
	return val, nil
}

// wireString returns a protobuf string field, which must be UTF-8, as a view of v.
func wireString(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", fmt.Errorf("%w: a string field is not valid UTF-8", errOTLPWire)
	}
	return view(v), nil
}

// eachFieldAt is eachField that also gives each field's place in b: b[start:end] is the
// field, its tag included.
func eachFieldAt(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64, start, end int) error) error {
	for off := 0; off < len(b); {
		start := off
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return fmt.Errorf("%w: %w", errOTLPWire, protowire.ParseError(n))
		}
		off += n
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b[off:])
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b[off:])
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b[off:])
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b[off:])
			x = uint64(x32)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[off:])
			if n >= 0 {
				off += n
				continue
			}
		}
		if n < 0 {
			return fmt.Errorf("%w: %w", errOTLPWire, protowire.ParseError(n))
		}
		off += n
		if err := f(num, typ, v, x, start, off); err != nil {
			return err
		}
	}
	return nil
}

// eachField calls f with each field of the message b: its number, wire type, and value
// (the bytes of a length-delimited field, or the number of a varint or fixed one). Groups
// are skipped.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %w", errOTLPWire, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b)
			x = uint64(x32)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n >= 0 {
				b = b[n:]
				continue
			}
		}
		if n < 0 {
			return fmt.Errorf("%w: %w", errOTLPWire, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
