package pubsub

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// The CloudEvents 1.0 attributes as NATS headers (binary content mode), and svckit's own.
const (
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderSpecVersion = "ce-specversion"
	HeaderTime        = "ce-time"
	HeaderContentType = "content-type"
	// HeaderKey carries the ordering key.
	HeaderKey = "svckit-key"
	// HeaderDeadSubject and HeaderDeadError carry, on a dead letter, the subject the
	// message was published on and the last handler error.
	HeaderDeadSubject = "svckit-dlq-subject"
	HeaderDeadError   = "svckit-dlq-error"
	// HeaderDeadGroup carries, on a dead letter, the group that gave up on it.
	HeaderDeadGroup = "svckit-dlq-group"
)

// SpecVersion is the CloudEvents version of the events.
const SpecVersion = "1.0"

// encodeHeaders returns the NATS headers of m.
func encodeHeaders(m *Message) nats.Header {
	h := make(nats.Header, 8+len(m.Headers))
	// One backing array for all the values: a header costs no allocation of its own.
	fillHeaders(h, make([]string, 0, 8+len(m.Headers)), m, ceTime(m))
	return h
}

// ceTime returns m's ce-time header: its time in RFC 3339 with nanoseconds, in UTC.
func ceTime(m *Message) string { return m.Time.UTC().Format(time.RFC3339Nano) }

// appendCETime appends m's ce-time header (see ceTime) to b.
func appendCETime(b []byte, m *Message) []byte { return m.Time.UTC().AppendFormat(b, time.RFC3339Nano) }

// fillHeaders sets the NATS headers of m in h, an empty map, with the values in vals'
// backing array (appended from vals[:0]: a header costs no allocation of its own while
// it has room), and returns vals for the next message; at is m's ce-time (ceTime). A fast
// batch fills one map and one array for all its messages, each encoded on the wire
// before the next is filled, and formats the times of all of them into one string.
func fillHeaders(h nats.Header, vals []string, m *Message, at string) []string {
	typ := m.Type
	if typ == "" {
		typ = m.Subject
	}
	ct := m.ContentType
	if ct == "" {
		ct = "application/json"
	}
	vals = vals[:0]
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for k, v := range m.Headers {
		set(k, v)
	}
	set(nats.MsgIdHdr, m.ID)
	set(HeaderID, m.ID)
	set(HeaderSource, m.Source)
	set(HeaderType, typ)
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderTime, at)
	set(HeaderContentType, ct)
	if m.Key != "" {
		set(HeaderKey, m.Key)
	}
	return vals
}

// decodeMessage makes a Message of the headers and data of a received NATS message.
// Header names are matched without regard to case, allocation-free: publishers write
// them in lower case (Nats-Msg-Id as nats.go spells it), and only others are folded.
func decodeMessage(subject string, h nats.Header, data []byte) *Message {
	m := &Message{Subject: logicalSubject(subject), Data: data}
	for k, vs := range h {
		if len(vs) == 0 || k == nats.MsgIdHdr {
			continue
		}
		if !m.setAttribute(k, vs[0]) {
			if f := foldName(k); f == k || !m.setAttribute(f, vs[0]) {
				m.SetHeader(k, vs[0])
			}
		}
	}
	if m.ID == "" {
		m.ID = h.Get(nats.MsgIdHdr)
	}
	return m
}

// setAttribute sets the CloudEvents attribute (or key) that header name carries, and
// reports whether name is one: a name in lower case, as publishers write them.
func (m *Message) setAttribute(name, v string) bool {
	switch name {
	case HeaderID:
		m.ID = v
	case HeaderSource:
		m.Source = v
	case HeaderType:
		m.Type = v
	case HeaderTime:
		m.Time, _ = time.Parse(time.RFC3339Nano, v)
	case HeaderContentType:
		m.ContentType = v
	case HeaderKey:
		m.Key = v
	case HeaderSpecVersion, msgIDLower:
	default:
		return false
	}
	return true
}

// msgIDLower is nats.MsgIdHdr in lower case.
const msgIDLower = "nats-msg-id"

// foldName returns the header name setAttribute knows that k is in another case, or k.
func foldName(k string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			for _, n := range [...]string{HeaderID, HeaderSource, HeaderType, HeaderTime, HeaderContentType, HeaderKey, HeaderSpecVersion, msgIDLower} {
				if strings.EqualFold(k, n) {
					return n
				}
			}
			return k
		}
	}
	return k
}

// natsCarrier is a propagation.TextMapCarrier on NATS headers that keeps keys as given
// (the W3C propagator uses lower-case keys).
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c natsCarrier) Set(key, value string) { c[key] = []string{value} }

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// mapCarrier is a propagation.TextMapCarrier on Message.Headers.
type mapCarrier map[string]string

func (c mapCarrier) Get(key string) string { return c[key] }
func (c mapCarrier) Set(key, value string) { c[key] = value }
func (c mapCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
