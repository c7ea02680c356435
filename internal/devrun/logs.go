package devrun

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/klauspost/compress/s2"
)

// LogLine is one line a service process wrote, parsed when it is a JSON log record.
type LogLine struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Service  string    `json:"service"`
	Instance string    `json:"instance"`
	Stream   string    `json:"stream"` // "stdout", "stderr" or "devrun"
	Level    string    `json:"level,omitempty"`
	Msg      string    `json:"msg,omitempty"`
	TraceID  string    `json:"trace_id,omitempty"`
	Raw      string    `json:"raw"`
}

// Attrs parses the line's JSON attributes again; lines are stored raw to keep memory low.
func (l *LogLine) Attrs() map[string]any {
	if !strings.HasPrefix(l.Raw, "{") {
		return nil
	}
	var m map[string]any
	if json.Unmarshal([]byte(l.Raw), &m) != nil {
		return nil
	}
	return m
}

// LogStore keeps the most recent lines of every process in a ring bounded by count and by
// bytes, and hands new lines to subscribers (the terminal printer, the dashboard's live
// stream). A stored line is its raw text and a small record of where the filters' fields
// are in it; Query builds LogLine values from them.
type LogStore struct {
	mu       sync.RWMutex
	ring     []logEntry // a ring: n lines from start, oldest first
	start, n int
	bytes    int    // bytes of the stored lines (raw text and records)
	next     uint64 // sequence number of the next line
	subs     map[chan LogLine]struct{}
	limit    int
	maxBytes int
	names    []string          // services, instances, streams and levels; 0 is ""
	nameIdx  map[string]uint16 // index in names
	cold     int               // the oldest lines, in compressed blocks
	zbuf     []byte            // reused: the block being compressed
	ztext    []byte            // reused: the text of the block being compressed
	text     textArena         // the hot lines' copies
}

// textArena copies lines into shared chunks instead of one allocation each. A chunk's
// bytes are never written again once handed out; it is freed when none of its lines is
// referenced any more: the hot lines are compressed oldest first, so a chunk outlives its
// last line's compression little.
type textArena struct{ chunk []byte }

const (
	textChunk   = 64 << 10 // bytes of a textArena's chunk
	maxArenaLen = 4 << 10  // longer lines get an allocation of their own
)

// clone returns a copy of v that shares no memory with v.
func (a *textArena) clone(v string) string {
	if len(v) == 0 || len(v) > maxArenaLen {
		return strings.Clone(v)
	}
	if cap(a.chunk)-len(a.chunk) < len(v) {
		a.chunk = make([]byte, 0, textChunk)
	}
	n := len(a.chunk)
	a.chunk = append(a.chunk, v...)
	return unsafe.String(&a.chunk[n], len(v))
}

// Older lines are compressed: the newest hotLines lines stay as they are, and every
// blockLines lines beyond them become one S2 block (github.com/klauspost/compress/s2, a
// Snappy extension: about 2/3 of flate's ratio on the shop's access logs for 1/6 of its
// CPU, which was half of a line's intake).
const (
	hotLines   = 2048
	blockLines = 512
)

// logBlock is the raw text of consecutive lines, compressed.
type logBlock struct {
	z    []byte
	size int // decompressed
	live int // lines of the block still stored
}

// text decompresses the block.
func (b *logBlock) text() string {
	buf, err := s2.Decode(make([]byte, b.size), b.z)
	if err != nil || len(buf) != b.size {
		return "" // cannot happen: the store wrote the block
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is never written again
}

// logEntry is a stored line. Msg and TraceID are pieces of raw where they are there as they
// are (not JSON-escaped); what fits nowhere else is in extra.
type logEntry struct {
	raw                       string // "" when the line is in blk
	unixNano                  int64
	extra                     *logExtra
	blk                       *logBlock
	rawOff, rawLen            uint32 // where the line is in blk's text
	traceHash                 uint32 // of the trace id, to skip blocks without it unread
	msgOff, msgLen, traceOff  uint32
	service, instance, stream uint16
	level                     uint16
	traceLen                  uint8
	utc                       bool // the line's own time, in UTC; else local time
}

// logExtra holds the fields of a line that are not stored in its logEntry.
type logExtra struct {
	service, instance, stream, level, msg, traceID string
}

const (
	logEntryBytes = int(unsafe.Sizeof(logEntry{}))
	// DefaultLogBytes bounds a LogStore's lines and records: 100,000 lines of up to about
	// 440 bytes (the shop's are under 300).
	DefaultLogBytes = 48 << 20
)

// DefaultMemoryLimit is the soft memory limit svckit dev sets for its own process unless the
// GOMEMLIMIT environment variable sets one (see runtime/debug.SetMemoryLimit). The log and
// trace stores, bounded by DefaultLogBytes and DefaultTraceBytes, are most of its heap; the
// limit makes the garbage collector run before the heap doubles, as it otherwise would.
const DefaultMemoryLimit = 120 << 20

// LimitMemory sets DefaultMemoryLimit as the process's soft memory limit unless getenv
// ("GOMEMLIMIT") is set, and returns the limit in effect. `svckit dev` calls it once at its
// start.
func LimitMemory(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1) // the runtime read it at start
	}
	debug.SetMemoryLimit(DefaultMemoryLimit)
	return DefaultMemoryLimit
}

// NewLogStore returns a store that keeps the last limit lines (default 100,000) in at most
// DefaultLogBytes.
func NewLogStore(limit int) *LogStore {
	if limit <= 0 {
		limit = 100_000
	}
	return &LogStore{ring: make([]logEntry, min(limit, 4096)), subs: map[chan LogLine]struct{}{}, limit: limit,
		maxBytes: DefaultLogBytes, names: []string{""}, nameIdx: map[string]uint16{"": 0}}
}

// SetMaxBytes changes the bound of the store's bytes (n <= 0: DefaultLogBytes); the oldest
// lines beyond it are dropped at once.
func (s *LogStore) SetMaxBytes(n int) {
	if n <= 0 {
		n = DefaultLogBytes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxBytes = n
	for s.n > 1 && s.bytes > s.maxBytes {
		s.dropOldestLocked()
	}
}

// Add parses and stores one line.
func (s *LogStore) Add(service, instance, stream, raw string) LogLine {
	l := LogLine{Service: service, Instance: instance, Stream: stream, Raw: raw}
	timed := false
	if strings.HasPrefix(raw, "{") {
		// Only the fields the filters need; the rest stays in Raw.
		if m, ok := parseLogFields(raw); ok {
			l.Level, l.Msg, l.TraceID = m.Level, m.Msg, m.TraceID
			if t, err := time.Parse(time.RFC3339Nano, m.Time); err == nil {
				l.Time, timed = t, true
			}
		}
	}
	if !timed {
		l.Time = time.Now() // a line without its own time (a clock read costs 40-100 ns here)
	}
	s.mu.Lock()
	l.Seq = s.next
	s.next++
	e := s.entryLocked(&l)
	size := len(e.raw) + logEntryBytes
	for s.n > 0 && (s.n >= s.limit || s.bytes+size > s.maxBytes) {
		s.dropOldestLocked()
	}
	if s.n == len(s.ring) { // grow the ring, oldest first
		grown := make([]logEntry, min(max(2*len(s.ring), 1), s.limit))
		for i := range s.n {
			grown[i] = s.ring[(s.start+i)%len(s.ring)]
		}
		s.ring, s.start = grown, 0
	}
	s.ring[(s.start+s.n)%len(s.ring)] = e
	s.n++
	s.bytes += size
	l = s.lineLocked(&e, e.raw, l.Seq) // subscribers share the stored strings
	if s.n-s.cold >= hotLines+blockLines {
		s.compressLocked()
	}
	for ch := range s.subs {
		select {
		case ch <- l:
		default: // a slow subscriber misses lines rather than stalling the services
		}
	}
	s.mu.Unlock()
	return l
}

// dropOldestLocked drops the oldest line.
func (s *LogStore) dropOldestLocked() {
	e := &s.ring[s.start]
	s.bytes -= len(e.raw) + logEntryBytes
	if e.blk != nil {
		if e.blk.live--; e.blk.live == 0 {
			s.bytes -= len(e.blk.z)
		}
		s.cold--
	}
	*e = logEntry{}
	s.start = (s.start + 1) % len(s.ring)
	s.n--
}

// fnv32 is the 32-bit FNV-1a hash of s.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// compressLocked compresses the blockLines oldest lines that are not compressed yet.
func (s *LogStore) compressLocked() {
	text := s.ztext[:0] // the block's lines, copied once into a reused buffer
	for i := range blockLines {
		text = append(text, s.ring[(s.start+s.cold+i)%len(s.ring)].raw...)
	}
	s.ztext = text
	size := len(text)
	if n := s2.MaxEncodedLen(size); cap(s.zbuf) < n {
		s.zbuf = make([]byte, n)
	}
	z := s2.Encode(s.zbuf[:cap(s.zbuf)], text)
	b := &logBlock{z: bytes.Clone(z), size: size, live: blockLines}
	off := 0
	for i := range blockLines {
		e := &s.ring[(s.start+s.cold+i)%len(s.ring)]
		s.bytes -= len(e.raw)
		e.blk, e.rawOff, e.rawLen, e.raw = b, uint32(off), uint32(len(e.raw)), ""
		off += int(e.rawLen)
	}
	s.bytes += len(b.z)
	s.cold += blockLines
}

// name returns the index of v in s.names, adding it, or false when the table is full.
func (s *LogStore) name(v string) (uint16, bool) {
	if i, ok := s.nameIdx[v]; ok {
		return i, true
	}
	if len(s.names) > math.MaxUint16 || len(v) > 64 {
		return 0, false
	}
	v = strings.Clone(v)
	i := uint16(len(s.names))
	s.names = append(s.names, v)
	s.nameIdx[v] = i
	return i, true
}

// offsetIn returns where sub is in raw: its place when sub is a piece of raw (as the
// fields parseLogFields reads mostly are), else its first occurrence, or -1.
func offsetIn(raw, sub string) int {
	if len(sub) <= len(raw) {
		d := uintptr(unsafe.Pointer(unsafe.StringData(sub))) - uintptr(unsafe.Pointer(unsafe.StringData(raw)))
		if d <= uintptr(len(raw)-len(sub)) {
			return int(d)
		}
	}
	return strings.Index(raw, sub)
}

// entryLocked returns the stored form of l; its Raw is a copy that shares nothing with the
// caller's buffers.
func (s *LogStore) entryLocked(l *LogLine) logEntry {
	e := logEntry{raw: s.text.clone(l.Raw), unixNano: l.Time.UnixNano(), utc: l.Time.Location() == time.UTC}
	var x logExtra
	extra := false
	var ok bool
	if e.service, ok = s.name(l.Service); !ok {
		x.service, extra = strings.Clone(l.Service), true
	}
	if e.instance, ok = s.name(l.Instance); !ok {
		x.instance, extra = strings.Clone(l.Instance), true
	}
	if e.stream, ok = s.name(l.Stream); !ok {
		x.stream, extra = strings.Clone(l.Stream), true
	}
	if e.level, ok = s.name(l.Level); !ok {
		x.level, extra = strings.Clone(l.Level), true
	}
	if l.Msg != "" {
		if i := offsetIn(l.Raw, l.Msg); i >= 0 {
			e.msgOff, e.msgLen = uint32(i), uint32(len(l.Msg))
		} else {
			x.msg, extra = strings.Clone(l.Msg), true
		}
	}
	if l.TraceID != "" {
		if i := offsetIn(l.Raw, l.TraceID); i >= 0 && len(l.TraceID) <= math.MaxUint8 {
			e.traceOff, e.traceLen, e.traceHash = uint32(i), uint8(len(l.TraceID)), fnv32(l.TraceID)
		} else {
			x.traceID, extra = strings.Clone(l.TraceID), true
		}
	}
	if extra {
		e.extra = new(x) // a copy: x itself stays off the heap for the common line without one
	}
	return e
}

// lineLocked builds the LogLine of a stored line whose raw text is raw ("" to leave Raw,
// Msg and TraceID out when they are pieces of it); its strings are the stored ones.
func (s *LogStore) lineLocked(e *logEntry, raw string, seq uint64) LogLine {
	l := LogLine{Seq: seq, Service: s.names[e.service], Instance: s.names[e.instance], Stream: s.names[e.stream],
		Level: s.names[e.level], Raw: raw}
	if raw != "" {
		l.Msg, l.TraceID = raw[e.msgOff:e.msgOff+e.msgLen], raw[e.traceOff:e.traceOff+uint32(e.traceLen)]
	}
	if e.utc {
		l.Time = time.Unix(0, e.unixNano).UTC()
	} else {
		l.Time = time.Unix(0, e.unixNano)
	}
	if x := e.extra; x != nil {
		l.Service = cmp.Or(x.service, l.Service)
		l.Instance = cmp.Or(x.instance, l.Instance)
		l.Stream = cmp.Or(x.stream, l.Stream)
		l.Level = cmp.Or(x.level, l.Level)
		l.Msg = cmp.Or(x.msg, l.Msg)
		l.TraceID = cmp.Or(x.traceID, l.TraceID)
	}
	return l
}

// LogFilter selects lines; empty fields match everything.
type LogFilter struct {
	Service string
	Level   string // lowest level: DEBUG, INFO, WARN, ERROR
	TraceID string
	Text    string // substring of the raw line
	Limit   int    // most recent lines to return (default 500)
}

var levelRank = map[string]int{"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}

// Match reports whether l passes the filter.
func (f LogFilter) Match(l *LogLine) bool {
	if f.Service != "" && l.Service != f.Service {
		return false
	}
	if f.TraceID != "" && l.TraceID != f.TraceID {
		return false
	}
	if f.Level != "" {
		want, ok := levelRank[strings.ToUpper(f.Level)]
		if have, ok2 := levelRank[l.Level]; ok && (!ok2 || have < want) {
			return false
		}
	}
	if f.Text != "" && !containsFold(l.Raw, f.Text) {
		return false
	}
	return true
}

// containsFold reports whether sub is in s, ignoring ASCII case, without allocating. The
// candidates for sub's first byte, in either case, are found with strings.IndexByte.
func containsFold(s, sub string) bool {
	n := len(sub)
	if n == 0 {
		return true
	}
	lo, up := lowerASCII(sub[0]), upperASCII(sub[0])
	nextLo, nextUp := -1, -1 // the next position of each, or len(s) when there is none
	for i := 0; i+n <= len(s); i++ {
		if nextLo < i {
			nextLo = indexFrom(s, lo, i)
		}
		if lo == up {
			nextUp = nextLo
		} else if nextUp < i {
			nextUp = indexFrom(s, up, i)
		}
		i = min(nextLo, nextUp)
		if i+n > len(s) {
			return false
		}
		j := 1
		for j < n && lowerASCII(s[i+j]) == lowerASCII(sub[j]) {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// indexFrom returns the index of the first c in s at or after from, or len(s).
func indexFrom(s string, c byte, from int) int {
	if k := strings.IndexByte(s[from:], c); k >= 0 {
		return from + k
	}
	return len(s)
}

func upperASCII(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Query returns the most recent lines that match f, oldest first.
func (s *LogStore) Query(f LogFilter) []LogLine {
	if f.Limit <= 0 {
		f.Limit = 500
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []LogLine
	// The fields that are not pieces of the raw text are checked first, so that blocks of
	// lines none of which can match are not decompressed.
	pre := f
	pre.TraceID, pre.Text = "", ""
	traceHash := fnv32(f.TraceID)
	var blk *logBlock
	var text string
	for i := s.n - 1; i >= 0 && len(out) < f.Limit; i-- {
		seq := s.next - uint64(s.n-i)
		e := &s.ring[(s.start+i)%len(s.ring)]
		raw := e.raw
		if e.blk != nil {
			if l := s.lineLocked(e, "", seq); !pre.Match(&l) {
				continue
			} else if f.TraceID != "" && (e.traceLen > 0 && e.traceHash != traceHash || e.traceLen == 0 && l.TraceID != f.TraceID) {
				continue
			}
			if e.blk != blk {
				blk, text = e.blk, e.blk.text()
			}
			raw = text[e.rawOff : e.rawOff+e.rawLen]
		}
		l := s.lineLocked(e, raw, seq)
		if f.Match(&l) {
			out = append(out, l)
		}
	}
	slices.Reverse(out)
	return out
}

// Len returns the number of lines kept.
func (s *LogStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// Subscribe returns a channel of new lines and a function that ends the subscription.
func (s *LogStore) Subscribe(buffer int) (<-chan LogLine, func()) {
	ch := make(chan LogLine, buffer)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		if _, ok := s.subs[ch]; ok {
			delete(s.subs, ch)
			close(ch)
		}
		s.mu.Unlock()
	}
}
