package devrun

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// redPrefix begins the names of the families the RED series are computed from
// (svckit_requests_total, svckit_request_errors_total, svckit_request_duration_seconds).
const redPrefix = "svckit_request"

// redLines keeps, in place, the lines of a Prometheus text page that belong to the RED
// families — their samples and their HELP and TYPE lines — and drops the rest (the Go
// runtime's, the process's, other svckit families: most of a page), which the parser
// would otherwise build objects for on every scrape. Every line of a family begins with
// its name, so the families kept are whole.
func redLines(page []byte) []byte {
	out := page[:0]
	for len(page) > 0 {
		line := page
		if i := bytes.IndexByte(page, '\n'); i >= 0 {
			line, page = page[:i+1], page[i+1:]
		} else {
			page = nil
		}
		name := line
		if bytes.HasPrefix(name, []byte("# HELP ")) || bytes.HasPrefix(name, []byte("# TYPE ")) {
			name = name[len("# HELP "):]
		}
		if bytes.HasPrefix(name, []byte(redPrefix)) {
			out = append(out, line...) // out never passes line: it only shrinks the page
		}
	}
	return out
}

func (m *MetricsStore) scrape(ctx context.Context, addr string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return scrape{}, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return scrape{}, err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsPage+1))
	if err != nil {
		return scrape{}, fmt.Errorf("read %s/metrics: %w", addr, err)
	}
	if len(page) > maxMetricsPage {
		return scrape{}, fmt.Errorf("%s/metrics: larger than %d bytes", addr, maxMetricsPage)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(redLines(page)))
	if err != nil {
		return scrape{}, err
	}
	sc := scrape{requests: map[SeriesKey]float64{}, errors: map[SeriesKey]map[string]float64{}, buckets: map[SeriesKey]map[float64]float64{}}
	key := func(m *dto.Metric) (SeriesKey, string, bool) {
		var k SeriesKey
		side, kind := "", ""
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "service":
				k.Service = l.GetValue()
			case "transport":
				k.Transport = l.GetValue()
			case "method":
				k.Method = l.GetValue()
			case "side":
				side = l.GetValue()
			case "kind":
				kind = l.GetValue()
			}
		}
		return k, kind, side == "server"
	}
	if f := fams["svckit_requests_total"]; f != nil {
		for _, mt := range f.GetMetric() {
			if k, _, ok := key(mt); ok {
				sc.requests[k] += mt.GetCounter().GetValue()
			}
		}
	}
	if f := fams["svckit_request_errors_total"]; f != nil {
		for _, mt := range f.GetMetric() {
			if k, kind, ok := key(mt); ok {
				if sc.errors[k] == nil {
					sc.errors[k] = map[string]float64{}
				}
				sc.errors[k][kind] += mt.GetCounter().GetValue()
			}
		}
	}
	if f := fams["svckit_request_duration_seconds"]; f != nil {
		for _, mt := range f.GetMetric() {
			if k, _, ok := key(mt); ok {
				if sc.buckets[k] == nil {
					sc.buckets[k] = map[float64]float64{}
				}
				for _, b := range mt.GetHistogram().GetBucket() {
					if !math.IsInf(b.GetUpperBound(), 1) { // +Inf is the sample count, added below
						sc.buckets[k][b.GetUpperBound()] += float64(b.GetCumulativeCount())
					}
				}
				sc.buckets[k][math.Inf(1)] += float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return sc, nil
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
