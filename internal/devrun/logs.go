package devrun

import (
	"encoding/json"
	"strings"
	"sync"
	"time"
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

// LogStore keeps the most recent lines of every process in a ring of fixed size, and
// hands new lines to subscribers (the terminal printer, the dashboard's live stream).
type LogStore struct {
	mu    sync.RWMutex
	ring  []LogLine
	next  uint64 // sequence number of the next line
	subs  map[chan LogLine]struct{}
	limit int
}

// NewLogStore returns a store that keeps the last limit lines (default 100,000).
func NewLogStore(limit int) *LogStore {
	if limit <= 0 {
		limit = 100_000
	}
	return &LogStore{ring: make([]LogLine, 0, min(limit, 4096)), subs: map[chan LogLine]struct{}{}, limit: limit}
}

// Add parses and stores one line.
func (s *LogStore) Add(service, instance, stream, raw string) LogLine {
	l := LogLine{Time: time.Now(), Service: service, Instance: instance, Stream: stream, Raw: raw}
	if strings.HasPrefix(raw, "{") {
		// Only the fields the filters need; the rest stays in Raw.
		var m struct {
			Time    string `json:"time"`
			Level   string `json:"level"`
			Msg     string `json:"msg"`
			TraceID string `json:"trace_id"`
		}
		if json.Unmarshal([]byte(raw), &m) == nil {
			l.Level, l.Msg, l.TraceID = m.Level, m.Msg, m.TraceID
			if t, err := time.Parse(time.RFC3339Nano, m.Time); err == nil {
				l.Time = t
			}
		}
	}
	s.mu.Lock()
	l.Seq = s.next
	s.next++
	if len(s.ring) < s.limit {
		s.ring = append(s.ring, l)
	} else {
		s.ring[l.Seq%uint64(s.limit)] = l
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
	n := uint64(len(s.ring))
	for i := uint64(0); i < n && len(out) < f.Limit; i++ {
		seq := s.next - 1 - i
		l := &s.ring[seq%uint64(s.limit)]
		if f.Match(l) {
			out = append(out, *l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Len returns the number of lines kept.
func (s *LogStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.ring)
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
