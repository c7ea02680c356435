package observe

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/transport/meta"
)

// lineFormat describes the JSON handler that NewLogger built, so that AccessLog can encode
// its fixed record straight into a buffer, byte for byte as slog's JSONHandler would, and
// write it to the same writer. The generic handler costs a float conversion through
// encoding/json, an attribute walk and a string per id on every line; this costs none.
type lineFormat struct {
	w          *lockedWriter // shared with the slog handler, so lines never interleave
	level      slog.Leveler  // nil: Info
	attrs      []byte        // the logger's own attributes, pre-encoded: `,"service":"shop"`
	flush      Flusher       // nil: none
	flushLevel slog.Level
	clock      atomic.Pointer[secondPrefix] // the second of the latest line, formatted
}

// secondPrefix is an RFC 3339 timestamp formatted up to its seconds, and its zone, for
// one second in one location: consecutive lines mostly share them, so a line formats
// only its fraction of a second.
type secondPrefix struct {
	sec  int64
	loc  *time.Location
	date []byte // 2006-01-02T15:04:05
	zone []byte // Z, or -07:00
}

// appendTime appends t as time.RFC3339Nano formats it (slog's JSONHandler's format),
// formatting the date, the time to the second and the zone once per second.
func (j *lineFormat) appendTime(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	p := j.clock.Load()
	if p == nil || p.sec != sec || p.loc != loc {
		p = &secondPrefix{sec: sec, loc: loc,
			date: t.AppendFormat(nil, "2006-01-02T15:04:05"), zone: t.AppendFormat(nil, "Z07:00")}
		j.clock.Store(p)
	}
	b = append(b, p.date...)
	if ns := t.Nanosecond(); ns != 0 {
		// The fraction with its trailing zeros trimmed, as the layout's ".999999999".
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, p.zone...)
}

// enabled reports whether lines at level are written.
func (j *lineFormat) enabled(level slog.Level) bool {
	min := slog.LevelInfo
	if j.level != nil {
		min = j.level.Level()
	}
	return level >= min
}

// lockedWriter serializes writes to w. NewLogger gives one to its JSON handler and to the
// access log's encoder, which write whole lines with one Write call each.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// maxPooledLine is the largest buffer returned to the pool: a line with a huge error text
// is encoded in a buffer of its own, which the pool does not keep.
const maxPooledLine = 16 << 10

// linePool holds buffers for encoded access-log lines.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// accessLine is the pre-encoded part of one endpoint's access-log lines.
type accessLine struct {
	j      *lineFormat
	msg    []byte // `","msg":"request"` plus the logger's and the endpoint's attributes
	levels [4][]byte
}

// newAccessLine pre-encodes what every line of an endpoint shares.
func newAccessLine(j *lineFormat, msg, transport, service, method string) *accessLine {
	b := append([]byte(nil), `,"msg":`...)
	b = appendJSONString(b, msg)
	b = append(b, j.attrs...)
	b = appendJSONAttr(b, TransportKey, transport)
	b = appendJSONAttr(b, RPCServiceKey, service)
	b = appendJSONAttr(b, RPCMethodKey, method)
	b = append(b, `,"`+DurationKey+`":`...)
	a := &accessLine{j: j, msg: b}
	for i, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		a.levels[i] = appendJSONString([]byte(`"level":`), l.String())
	}
	return a
}

// levelField returns `"level":"INFO"` for level.
func (a *accessLine) levelField(level slog.Level) []byte {
	switch level {
	case slog.LevelDebug:
		return a.levels[0]
	case slog.LevelInfo:
		return a.levels[1]
	case slog.LevelWarn:
		return a.levels[2]
	case slog.LevelError:
		return a.levels[3]
	}
	return appendJSONString([]byte(`"level":`), level.String())
}

// write encodes and writes one line: time, level, msg, the attributes, duration_ms, kind
// and error for a failure, then the context's trace_id, span_id and request_id, in the
// order and format of slog's JSONHandler.
func (a *accessLine) write(ctx context.Context, end time.Time, level slog.Level, d time.Duration, kind, errText string, failed bool) {
	bp := linePool.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = a.j.appendTime(b, end)
	b = append(b, `",`...)
	b = append(b, a.levelField(level)...)
	b = append(b, a.msg...)
	b = appendJSONFloat(b, durationMS(d))
	if failed {
		b = appendJSONAttr(b, KindKey, kind)
		b = appendJSONAttr(b, ErrorKey, errText)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		tid, sid := sc.TraceID(), sc.SpanID()
		b = append(b, `,"`+TraceIDKey+`":"`...)
		b = appendHex(b, tid[:])
		b = append(b, `","`+SpanIDKey+`":"`...)
		b = appendHex(b, sid[:])
		b = append(b, '"')
	}
	if id := meta.RequestID(ctx); id != "" {
		b = appendJSONAttr(b, RequestIDKey, id)
	}
	b = append(b, "}\n"...)
	_, _ = a.j.w.Write(b)
	if a.j.flush != nil && level >= a.j.flushLevel {
		_ = a.j.flush.Flush()
	}
	if cap(b) <= maxPooledLine {
		*bp = b
		linePool.Put(bp)
	}
}

// appendHex appends the lowercase hexadecimal digits of p.
func appendHex(b, p []byte) []byte {
	for _, x := range p {
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return b
}

// appendJSONAttr appends `,"key":"value"`.
func appendJSONAttr(b []byte, key, value string) []byte {
	b = append(b, ',')
	b = appendJSONString(b, key)
	b = append(b, ':')
	return appendJSONString(b, value)
}

// appendJSONFloat appends f as encoding/json (and so slog's JSONHandler) writes a float64:
// the shortest decimal, in exponent form below 1e-6 and from 1e21 on. f must be finite.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s as a quoted JSON string, escaped as slog's JSONHandler
// escapes strings (its appendEscapedJSONString, from the Go standard library): control
// characters, quote and backslash; invalid UTF-8 becomes U+FFFD; U+2028 and U+2029 are
// escaped; <, > and & are not.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
