package devrun

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
// encoding, as SpansFromOTLP does for the decoded message.
func decodeOTLPSpans(b []byte) ([]Span, error) {
	var out []Span
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == fieldRequestResourceSpans && typ == protowire.BytesType {
			var err error
			out, err = decodeResourceSpans(v, out)
			return err
		}
		return nil
	})
	return out, err
}

// decodeResourceSpans appends the spans of one ResourceSpans to out.
func decodeResourceSpans(b []byte, out []Span) ([]Span, error) {
	first := len(out)
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
				k, val, err := decodeKeyValue(v)
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
				sp, err := decodeSpan(v)
				if err != nil {
					return err
				}
				out = append(out, sp)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	for i := first; i < len(out); i++ { // the resource may follow its spans on the wire
		out[i].Service = service
	}
	return out, nil
}

// decodeSpan decodes one Span message.
func decodeSpan(b []byte) (Span, error) {
	var s Span
	var kind uint64
	var start, end uint64
	var code uint64
	nattrs := 0
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == fieldSpanTraceID && typ == protowire.BytesType:
			s.TraceID = hex.EncodeToString(v)
		case num == fieldSpanSpanID && typ == protowire.BytesType:
			s.SpanID = hex.EncodeToString(v)
		case num == fieldSpanParentSpanID && typ == protowire.BytesType:
			s.ParentID = hex.EncodeToString(v) // "" when empty
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
		return s, err
	}
	if nattrs > 0 {
		// As pairs: TraceStore.Add finds the map of a set it holds already (most spans
		// repeat one) without building one per span; spanAttrs builds it for others.
		s.pairs = make([]attrPair, 0, nattrs)
		err = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num != fieldSpanAttributes || typ != protowire.BytesType {
				return nil
			}
			k, val, err := decodeKeyValue(v)
			if err != nil {
				return err
			}
			s.pairs = append(s.pairs, attrPair{k, val.str})
			return nil
		})
		if err != nil {
			return s, err
		}
	}
	s.Kind = spanKind(int32(kind))
	s.Start, s.End = time.Unix(0, int64(start)), time.Unix(0, int64(end))
	s.Error = int32(code) == int32(tracepb.Status_STATUS_CODE_ERROR)
	if canceled(&s) {
		s.Canceled, s.Error = true, false
	}
	return s, nil
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

// decodeKeyValue decodes one KeyValue message.
func decodeKeyValue(b []byte) (string, wireValue, error) {
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
			val, err = decodeAnyValue(v)
		}
		return err
	})
	return key, val, err
}

// decodeAnyValue returns an AnyValue as anyValue does. Values other than strings,
// booleans, integers and doubles (arrays, lists of key-values, bytes), rare on spans, go
// through the generated type.
func decodeAnyValue(b []byte) (wireValue, error) {
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
			val = wireValue{str: strconv.FormatInt(int64(x), 10), kind: fieldAnyInt}
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

// wireString returns a protobuf string field, which must be UTF-8.
func wireString(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", fmt.Errorf("%w: a string field is not valid UTF-8", errOTLPWire)
	}
	return string(v), nil
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
