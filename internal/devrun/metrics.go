package devrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"
)

// REDPoint is one sample of an endpoint's rate, errors and duration, computed from two
// consecutive scrapes of every instance of its service.
type REDPoint struct {
	Time      time.Time          `json:"t"`
	Rate      float64            `json:"rate"`        // requests per second
	ErrorRate float64            `json:"error_rate"`  // failed requests per second
	ErrorKind map[string]float64 `json:"error_kinds"` // failed requests per second by kind
	P50       float64            `json:"p50"`         // seconds
	P95       float64            `json:"p95"`
	P99       float64            `json:"p99"`
}

// SeriesKey names one endpoint's series: service, transport and method, server side.
type SeriesKey struct {
	Service   string `json:"service"`
	Transport string `json:"transport"`
	Method    string `json:"method"`
}

// MetricsStore scrapes every instance's /metrics and keeps RED series per endpoint.
type MetricsStore struct {
	sys    *System
	mu     sync.RWMutex
	series map[SeriesKey][]REDPoint
	prev   map[string]scrape // per instance
	keep   int
	client *http.Client
	pages  sync.Pool // of *[]byte: the buffers pages are read into, one per scrape in progress
}

type scrape struct {
	at       time.Time
	requests map[SeriesKey]float64
	errors   map[SeriesKey]map[string]float64
	buckets  map[SeriesKey]map[float64]float64 // cumulative counts by upper bound
}

// NewMetricsStore returns a store for the system's instances keeping 300 points per series.
func NewMetricsStore(s *System) *MetricsStore {
	return &MetricsStore{sys: s, series: map[SeriesKey][]REDPoint{}, prev: map[string]scrape{}, keep: 300,
		client: &http.Client{Timeout: 2 * time.Second}}
}

// Run scrapes every interval until ctx ends.
func (m *MetricsStore) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.ScrapeOnce(ctx)
		}
	}
}

// ScrapeOnce scrapes every instance and appends a point to every series.
func (m *MetricsStore) ScrapeOnce(ctx context.Context) {
	now := time.Now()
	type delta struct {
		requests float64
		errors   map[string]float64
		buckets  map[float64]float64
		secs     float64
	}
	sum := map[SeriesKey]*delta{}
	for _, in := range m.sys.Instances {
		cur, err := m.scrape(ctx, in.Addrs["admin"])
		if err != nil {
			continue
		}
		cur.at = now
		m.mu.Lock()
		prev, ok := m.prev[in.ID]
		m.prev[in.ID] = cur
		m.mu.Unlock()
		if !ok {
			continue
		}
		secs := cur.at.Sub(prev.at).Seconds()
		for k, v := range cur.requests {
			d := sum[k]
			if d == nil {
				d = &delta{errors: map[string]float64{}, buckets: map[float64]float64{}}
				sum[k] = d
			}
			d.secs = secs
			d.requests += nonNeg(v - prev.requests[k]) // a restarted instance resets to 0
			for kind, e := range cur.errors[k] {
				d.errors[kind] += nonNeg(e - prev.errors[k][kind])
			}
			for le, c := range cur.buckets[k] {
				d.buckets[le] += nonNeg(c - prev.buckets[k][le])
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, d := range sum {
		if d.secs <= 0 {
			continue
		}
		p := REDPoint{Time: now, Rate: d.requests / d.secs, ErrorKind: map[string]float64{}}
		for kind, e := range d.errors {
			p.ErrorRate += e / d.secs
			p.ErrorKind[kind] = e / d.secs
		}
		p.P50, p.P95, p.P99 = quantile(d.buckets, 0.50), quantile(d.buckets, 0.95), quantile(d.buckets, 0.99)
		s := append(m.series[k], p)
		if len(s) > m.keep {
			s = s[len(s)-m.keep:]
		}
		m.series[k] = s
	}
}

func nonNeg(v float64) float64 { return math.Max(v, 0) }

// quantile estimates a quantile from cumulative bucket counts, interpolating linearly
// within the bucket, as Prometheus' histogram_quantile does.
func quantile(buckets map[float64]float64, q float64) float64 {
	if len(buckets) == 0 {
		return 0
	}
	les := make([]float64, 0, len(buckets))
	for le := range buckets {
		les = append(les, le)
	}
	sort.Float64s(les)
	total := buckets[les[len(les)-1]]
	if total == 0 {
		return 0
	}
	rank := q * total
	prevLe, prevCount := 0.0, 0.0
	for _, le := range les {
		c := buckets[le]
		if c >= rank {
			if math.IsInf(le, 1) {
				return prevLe
			}
			if c == prevCount {
				return le
			}
			return prevLe + (le-prevLe)*(rank-prevCount)/(c-prevCount)
		}
		prevLe, prevCount = le, c
	}
	return prevLe
}

// maxMetricsPage bounds a /metrics page.
const maxMetricsPage = 16 << 20

// The families the RED series are computed from, and the sample names they are read from.
const (
	redPrefix      = "svckit_request"
	redRequests    = "svckit_requests_total"
	redErrors      = "svckit_request_errors_total"
	redBucket      = "svckit_request_duration_seconds_bucket"
	redCount       = "svckit_request_duration_seconds_count"
	redSum         = "svckit_request_duration_seconds_sum"
	redHistogram   = "svckit_request_duration_seconds"
	maxMetricsLine = 64 << 10 // a longer RED sample line is an error
)

func (m *MetricsStore) scrape(ctx context.Context, addr string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return scrape{}, err
	}
	// Uncompressed: on loopback gzip is CPU spent twice for nothing (the service's
	// promhttp compresses every page when asked, and Go's client asks by itself).
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := m.client.Do(req)
	if err != nil {
		return scrape{}, err
	}
	defer resp.Body.Close()
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return scrape{}, fmt.Errorf("%s/metrics: answered with Content-Encoding %q, asked for identity", addr, ce)
	}
	bp, _ := m.pages.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer m.pages.Put(bp)
	page, err := readBody((*bp)[:0], resp.Body, resp.ContentLength, maxMetricsPage)
	if cap(page) <= 1<<20 {
		*bp = page[:0] // a larger page's buffer is not kept
	}
	if err != nil {
		return scrape{}, fmt.Errorf("%s/metrics: %w", addr, err)
	}
	sc, err := parseRED(page)
	if err != nil {
		return scrape{}, fmt.Errorf("%s/metrics: %w", addr, err)
	}
	return sc, nil
}

// parseRED reads the RED families' server-side samples from a Prometheus text page
// (version 0.0.4): svckit_requests_total, svckit_request_errors_total by kind, and the
// buckets of svckit_request_duration_seconds, whose _count is the +Inf bucket. Samples
// with the same service, transport and method are summed. Every other line — comments,
// other families, the histogram's _sum — is skipped after its first bytes, so a scrape
// costs a pass over the page and a few allocations per series, not objects per sample.
//
// A RED sample line is read as the text format defines it (labels in braces with quoted,
// escaped values, blanks and tabs between tokens, a float value as strconv.ParseFloat
// reads it, an optional integer timestamp); one that does not parse is an error naming
// its line, and so is a line over 64 KiB. It gives what the client_model parser (expfmt)
// gave for well-formed pages (TestParseREDMatchesExpfmt, FuzzParseRED), but bucket counts
// that are not integers are taken as they are rather than as 0.
func parseRED(page []byte) (scrape, error) {
	sc := scrape{requests: map[SeriesKey]float64{}, errors: map[SeriesKey]map[string]float64{}, buckets: map[SeriesKey]map[float64]float64{}}
	strs := map[string]string{} // label values, one string each per scrape
	var scratch []byte          // escaped label values are unescaped into it
	intern := func(b []byte) string {
		if v, ok := strs[string(b)]; ok {
			return v
		}
		v := string(b)
		strs[v] = v
		return v
	}
	for n := 1; len(page) > 0; n++ {
		line := page
		if i := bytes.IndexByte(page, '\n'); i >= 0 {
			line, page = page[:i], page[i+1:]
		} else {
			page = nil
		}
		line = bytes.TrimLeft(line, " \t")
		if !bytes.HasPrefix(line, []byte(redPrefix)) {
			continue
		}
		if len(line) > maxMetricsLine {
			return scrape{}, fmt.Errorf("line %d: longer than %d bytes", n, maxMetricsLine)
		}
		s, err := parseSample(line, intern, &scratch)
		if err != nil {
			return scrape{}, fmt.Errorf("line %d: %w", n, err)
		}
		if !s.server {
			continue
		}
		switch s.name {
		case redRequests:
			sc.requests[s.key] += s.value
		case redErrors:
			e := sc.errors[s.key]
			if e == nil {
				e = map[string]float64{}
				sc.errors[s.key] = e
			}
			e[s.kind] += s.value
		case redBucket, redCount, redSum, redHistogram:
			b := sc.buckets[s.key]
			if b == nil {
				b = map[float64]float64{math.Inf(1): 0} // +Inf is the sample count, the _count line
				sc.buckets[s.key] = b
			}
			switch {
			case s.name == redCount:
				b[math.Inf(1)] += s.value
			case s.name != redBucket:
			case !s.hasLe:
				return scrape{}, fmt.Errorf("line %d: a bucket without an le label", n)
			case !math.IsInf(s.le, 1):
				b[s.le] += s.value
			}
		}
	}
	return sc, nil
}

// redSample is one sample line of a RED family.
type redSample struct {
	name   string // one of the red* sample names, or "" for another svckit_request* line
	key    SeriesKey
	kind   string
	le     float64
	hasLe  bool
	server bool // side="server"
	value  float64
}

// parseSample parses one sample line (without its newline) whose name begins with
// redPrefix; intern turns the label values it keeps into strings.
func parseSample(line []byte, intern func([]byte) string, scratch *[]byte) (redSample, error) {
	var s redSample
	i := 0
	for i < len(line) && line[i] != '{' && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	switch name := line[:i]; string(name) {
	case redRequests:
		s.name = redRequests
	case redErrors:
		s.name = redErrors
	case redBucket:
		s.name = redBucket
	case redCount:
		s.name = redCount
	case redSum:
		s.name = redSum
	case redHistogram:
		s.name = redHistogram
	default:
		if !validMetricName(name) {
			return s, fmt.Errorf("invalid metric name %q", name)
		}
	}
	i = skipBlank(line, i)
	if i < len(line) && line[i] == '{' {
		var seen [6]bool // service, transport, method, side, kind, le
		for i = skipBlank(line, i+1); ; i = skipBlank(line, i) {
			if i >= len(line) {
				return s, errors.New("unexpected end of line in labels")
			}
			if line[i] == '}' {
				i++
				break
			}
			start := i
			for i < len(line) && line[i] != '=' && line[i] != ' ' && line[i] != '\t' {
				i++
			}
			label := line[start:i]
			if !validLabelName(label) {
				return s, fmt.Errorf("invalid label name %q", label)
			}
			if i = skipBlank(line, i); i >= len(line) || line[i] != '=' {
				return s, fmt.Errorf("expected '=' after label name %q", label)
			}
			if i = skipBlank(line, i+1); i >= len(line) || line[i] != '"' {
				return s, fmt.Errorf("expected '\"' at start of the value of label %q", label)
			}
			var val []byte
			var err error
			if val, i, err = labelValue(line, i+1, scratch); err != nil {
				return s, fmt.Errorf("label %q: %w", label, err)
			}
			slot := -1
			switch string(label) {
			case "service":
				slot, s.key.Service = 0, intern(val)
			case "transport":
				slot, s.key.Transport = 1, intern(val)
			case "method":
				slot, s.key.Method = 2, intern(val)
			case "side":
				slot, s.server = 3, string(val) == "server"
			case "kind":
				slot, s.kind = 4, intern(val)
			case "le":
				slot = 5
				if s.name == redBucket {
					le, err := strconv.ParseFloat(bytesView(val), 64)
					if err != nil {
						return s, fmt.Errorf("expected a float as the value of label le, got %q", val)
					}
					s.le, s.hasLe = le, true
				}
			case "__name__":
				return s, errors.New(`label name "__name__" is reserved`)
			}
			if slot >= 0 {
				if seen[slot] {
					return s, fmt.Errorf("duplicate label %q", label)
				}
				seen[slot] = true
			}
			if i = skipBlank(line, i); i < len(line) && line[i] == ',' {
				i++
			} else if i >= len(line) || line[i] != '}' {
				return s, fmt.Errorf("expected ',' or '}' after the value of label %q", label)
			}
		}
		i = skipBlank(line, i)
	}
	start := i
	for i < len(line) && line[i] != ' ' && line[i] != '\t' {
		i++
	}
	v, err := strconv.ParseFloat(bytesView(line[start:i]), 64)
	if err != nil {
		return s, fmt.Errorf("expected a float as the value, got %q", line[start:i])
	}
	s.value = v
	if i = skipBlank(line, i); i < len(line) { // a timestamp, ignored
		start = i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		if _, err := strconv.ParseInt(bytesView(line[start:i]), 10, 64); err != nil {
			return s, fmt.Errorf("expected an integer as the timestamp, got %q", line[start:i])
		}
		if i = skipBlank(line, i); i < len(line) {
			return s, fmt.Errorf("unexpected %q after the timestamp", line[i:])
		}
	}
	return s, nil
}

// labelValue returns the value of a quoted label value beginning at line[i] (after its
// opening quote), unescaping \\, \" and \n, with the index after the closing quote. A value
// without escapes is a piece of line; one with escapes is written into *scratch, which
// grows as it needs to.
func labelValue(line []byte, i int, scratch *[]byte) ([]byte, int, error) {
	start := i
	for i < len(line) && line[i] != '"' && line[i] != '\\' {
		i++
	}
	if i < len(line) && line[i] == '"' {
		if v := line[start:i]; utf8.Valid(v) {
			return v, i + 1, nil
		}
		return nil, i, fmt.Errorf("invalid UTF-8 in value %q", line[start:i])
	}
	buf := append((*scratch)[:0], line[start:i]...)
	defer func() { *scratch = buf[:0] }()
	for ; i < len(line); i++ {
		switch c := line[i]; c {
		case '"':
			if !utf8.Valid(buf) {
				return nil, i, fmt.Errorf("invalid UTF-8 in value %q", buf)
			}
			return buf, i + 1, nil
		case '\\':
			if i++; i >= len(line) {
				return nil, i, errors.New("unexpected end of line in value")
			}
			switch line[i] {
			case '\\', '"':
				buf = append(buf, line[i])
			case 'n':
				buf = append(buf, '\n')
			default:
				return nil, i, fmt.Errorf("invalid escape sequence '\\%c'", line[i])
			}
		default:
			buf = append(buf, c)
		}
	}
	return nil, i, errors.New("unexpected end of line in value")
}

// bytesView is b as a string without a copy, for strconv's parsers: they keep nothing of
// their input (an error holds a copy).
func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// skipBlank returns the index of the first byte at or after i that is not a blank or tab.
func skipBlank(line []byte, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	return i
}

// validMetricName reports whether b is a metric name of the text format's classic
// charset ([a-zA-Z_:][a-zA-Z0-9_:]*).
func validMetricName(b []byte) bool {
	for i, c := range b {
		if !(c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return len(b) > 0
}

// validLabelName reports whether b is a label name of the classic charset
// ([a-zA-Z_][a-zA-Z0-9_]*).
func validLabelName(b []byte) bool {
	for i, c := range b {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return len(b) > 0
}

// Series returns a copy of every series.
func (m *MetricsStore) Series() map[SeriesKey][]REDPoint {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[SeriesKey][]REDPoint, len(m.series))
	for k, v := range m.series {
		out[k] = append([]REDPoint(nil), v...)
	}
	return out
}
