package devrun

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// redLines keeps, in place, the lines of a Prometheus text page that belong to the RED
// families — their samples and their HELP and TYPE lines — and drops the rest. It was
// the scrape's filter before the expfmt parser; scrapeExpfmt, the reference parseRED is
// checked against, still uses it.
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

// scrapeExpfmt is how a scrape read a page before parseRED: the RED lines through the
// client_model text parser, then the server side's samples summed per series.
func scrapeExpfmt(page []byte) (scrape, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(redLines(bytes.Clone(page))))
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
					if !math.IsInf(b.GetUpperBound(), 1) {
						sc.buckets[k][b.GetUpperBound()] += float64(b.GetCumulativeCount())
					}
				}
				sc.buckets[k][math.Inf(1)] += float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return sc, nil
}

// TestRedLines: the families the RED series read parse the same from the filtered page as
// from the whole page, and nothing else is left in it.
func TestRedLines(t *testing.T) {
	gateway, err := os.ReadFile("testdata/scrape/gateway.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		page string
		want int // families left
	}{
		{"the shop's gateway under load", string(gateway), -1},
		{"a RED family after another", "# TYPE go_goroutines gauge\ngo_goroutines 7\n# TYPE svckit_requests_total counter\nsvckit_requests_total{service=\"a\",side=\"server\"} 3\n", 1},
		{"none", "# TYPE go_goroutines gauge\ngo_goroutines 7\n", 0},
		{"empty", "", 0},
	}
	parse := func(t *testing.T, b []byte) map[string]*dto.MetricFamily {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return fams
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			all := parse(t, []byte(tc.page))
			got := parse(t, redLines([]byte(tc.page)))
			if tc.want >= 0 && len(got) != tc.want {
				t.Errorf("%d families left, want %d", len(got), tc.want)
			}
			for _, name := range []string{"svckit_requests_total", "svckit_request_errors_total", "svckit_request_duration_seconds"} {
				if !proto.Equal(all[name], got[name]) {
					t.Errorf("%s differs after filtering", name)
				}
			}
			if tc.want < 0 && got["svckit_requests_total"] == nil {
				t.Error("svckit_requests_total is missing")
			}
			for name := range got {
				if len(name) < len(redPrefix) || name[:len(redPrefix)] != redPrefix {
					t.Errorf("%s was kept", name)
				}
			}
		})
	}
}

// redTypes declares the RED families as svckit's pages do.
const redTypes = "# TYPE svckit_requests_total counter\n# TYPE svckit_request_errors_total counter\n" +
	"# TYPE svckit_request_duration_seconds histogram\n"

// genPage writes a well-formed page of RED families (and others) from r: label values
// with escapes and any UTF-8, labels in any order, blanks and tabs between tokens,
// timestamps, client-side samples, integer counts.
func genPage(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString("# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 12\n")
	b.WriteString(redTypes)
	words := []string{"gateway", "orders", "PlaceOrder", "grpc", "http", "GET /orders/{id}", `a "quoted" one`,
		`back\slash`, "new\nline", "ünïcödé ✓", "", "x"}
	word := func() string { return words[r.IntN(len(words))] }
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	blank := func() string { return []string{"", " ", "\t", "  "}[r.IntN(4)] }
	sep := func() string { return []string{" ", "\t", " \t "}[r.IntN(3)] }
	type series struct{ labels [][2]string }
	var all []series
	for range 1 + r.IntN(8) {
		s := series{labels: [][2]string{{"service", word()}, {"transport", word()}, {"method", word()},
			{"side", []string{"server", "client", "server"}[r.IntN(3)]}}}
		if r.IntN(3) == 0 {
			s.labels = append(s.labels, [2]string{"code", word()})
		}
		r.Shuffle(len(s.labels), func(i, j int) { s.labels[i], s.labels[j] = s.labels[j], s.labels[i] })
		all = append(all, s)
	}
	line := func(name string, labels [][2]string, value string) {
		b.WriteString(name)
		b.WriteString(blank())
		if len(labels) > 0 || r.IntN(2) == 0 {
			b.WriteString("{")
			for i, l := range labels {
				if i > 0 {
					b.WriteString(blank() + "," + blank())
				}
				fmt.Fprintf(&b, "%s%s=%s\"%s\"", l[0], blank(), blank(), esc.Replace(l[1]))
			}
			if len(labels) > 0 && r.IntN(4) == 0 {
				b.WriteString(",")
			}
			b.WriteString(blank() + "}")
		}
		b.WriteString(sep() + value)
		if r.IntN(5) == 0 {
			fmt.Fprintf(&b, "%s%d", sep(), 1700000000000+r.IntN(1000))
		}
		b.WriteString("\n")
	}
	for _, s := range all {
		line("svckit_requests_total", s.labels, fmt.Sprint(r.IntN(100000)))
	}
	for _, s := range all {
		if r.IntN(2) == 0 {
			line("svckit_request_errors_total", append(s.labels, [2]string{"kind", word()}), fmt.Sprintf("%g", float64(r.IntN(1000))))
		}
	}
	for _, s := range all {
		n := 0
		for _, le := range []string{"0.001", "0.005", "1e-2", "0.25", "1", "+Inf"} {
			n += r.IntN(50)
			with := append([][2]string{{"le", le}}, s.labels...)
			r.Shuffle(len(with), func(i, j int) { with[i], with[j] = with[j], with[i] })
			line("svckit_request_duration_seconds_bucket", with, fmt.Sprint(n))
		}
		line("svckit_request_duration_seconds_sum", s.labels, fmt.Sprintf("%g", r.Float64()*100))
		line("svckit_request_duration_seconds_count", s.labels, fmt.Sprint(n))
	}
	b.WriteString("# TYPE svckit_requests_in_flight gauge\nsvckit_requests_in_flight{service=\"gateway\"} 3\n")
	return b.String()
}

// sameScrape reports whether two scrapes hold the same sums (NaN equal to NaN).
func sameScrape(a, b scrape) bool {
	opt := func(x map[SeriesKey]float64) map[SeriesKey]string {
		m := map[SeriesKey]string{}
		for k, v := range x {
			m[k] = fmt.Sprint(v)
		}
		return m
	}
	return reflect.DeepEqual(opt(a.requests), opt(b.requests)) &&
		fmt.Sprint(a.errors) == fmt.Sprint(b.errors) && fmt.Sprint(a.buckets) == fmt.Sprint(b.buckets)
}

// TestParseREDMatchesExpfmt: parseRED reads what the expfmt path read from the shop's real
// scrape and from generated well-formed pages.
func TestParseREDMatchesExpfmt(t *testing.T) {
	gateway, err := os.ReadFile("testdata/scrape/gateway.txt")
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{"the shop's gateway under load": string(gateway), "empty": "",
		"other families only": "# TYPE go_goroutines gauge\ngo_goroutines 7\n"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		pages[fmt.Sprintf("generated %d", i)] = genPage(r)
	}
	for name, page := range pages {
		want, err := scrapeExpfmt([]byte(page))
		if err != nil {
			t.Fatalf("%s: expfmt: %v\n%s", name, err, page)
		}
		got, err := parseRED([]byte(page))
		if err != nil {
			t.Fatalf("%s: parseRED: %v\n%.3000s", name, err, page)
		}
		if !sameScrape(got, want) {
			t.Errorf("%s: parseRED\n%v\n%v\n%v\nexpfmt\n%v\n%v\n%v\npage:\n%s", name, got.requests, got.errors, got.buckets,
				want.requests, want.errors, want.buckets, page[:min(len(page), 3000)])
		}
		if name == "the shop's gateway under load" && len(got.requests) < 3 {
			t.Errorf("%d series in the gateway's page", len(got.requests))
		}
	}
}

// TestParseREDErrors: a malformed RED sample line is an error naming its line; other
// lines are not read.
func TestParseREDErrors(t *testing.T) {
	tests := []struct {
		name, page, want string // want: a piece of the error, "" for none
	}{
		{"unterminated labels", "svckit_requests_total{service=\"a\" 1\n", "line 1"},
		{"unterminated value", "svckit_requests_total{service=\"a} 1\n", "end of line in value"},
		{"bad escape", "svckit_requests_total{service=\"\\x\"} 1\n", "escape"},
		{"no value", "svckit_requests_total{service=\"a\"}\n", "expected a float"},
		{"bad value", "x 1\nsvckit_requests_total{side=\"server\"} one\n", "line 2: expected a float"},
		{"bad timestamp", "svckit_requests_total 1 soon\n", "timestamp"},
		{"after the timestamp", "svckit_requests_total 1 17 18\n", "after the timestamp"},
		{"duplicate label", "svckit_requests_total{side=\"server\",side=\"client\"} 1\n", "duplicate"},
		{"bucket without le", "svckit_request_duration_seconds_bucket{side=\"server\"} 1\n", "without an le"},
		{"bad le", "svckit_request_duration_seconds_bucket{le=\"big\"} 1\n", "label le"},
		{"bad label name", "svckit_requests_total{1a=\"x\"} 1\n", "invalid label name"},
		{"bad metric name", "svckit_request-x 1\n", "invalid metric name"},
		{"invalid UTF-8", "svckit_requests_total{service=\"\xff\"} 1\n", "UTF-8"},
		{"too long", "svckit_requests_total{service=\"" + strings.Repeat("a", maxMetricsLine) + "\"} 1\n", "longer than"},
		{"others are not read", "go_x{{{ 1\n# TYPE svckit_requests_total counter\nrandom text\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseRED([]byte(tc.page))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// FuzzParseRED: on any page parseRED returns without panicking, and on a page both it and
// expfmt accept (with the RED families declared as svckit declares them, comments of the
// input dropped) their counters agree; generated well-formed pages agree in full.
func FuzzParseRED(f *testing.F) {
	gateway, err := os.ReadFile("testdata/scrape/gateway.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gateway[bytes.Index(gateway, []byte("svckit_request")):][:2000], uint64(0)) // a piece: the engine minimizes what it finds

	f.Add([]byte("svckit_requests_total{service=\"a\",side=\"server\"} 3\n"), uint64(1))
	f.Add([]byte("svckit_request_errors_total{kind=\"x\\n\",side=\"server\"} 2 1700000000\n"), uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		page := genPage(rand.New(rand.NewPCG(seed, seed>>7)))
		want, err := scrapeExpfmt([]byte(page))
		if err != nil {
			t.Fatalf("expfmt on a generated page: %v", err)
		}
		if got, err := parseRED([]byte(page)); err != nil || !sameScrape(got, want) {
			t.Fatalf("generated page: %v\n%.3000s", err, page)
		}

		var lines []string
		for l := range strings.Lines(string(data)) {
			if !strings.HasPrefix(strings.TrimLeft(l, " \t"), "#") {
				lines = append(lines, l)
			}
		}
		raw := redTypes + strings.Join(lines, "")
		got, err := parseRED([]byte(raw))
		if err != nil {
			return
		}
		want, err = scrapeExpfmt([]byte(raw))
		if err != nil {
			return
		}
		if fmt.Sprint(got.requests) != fmt.Sprint(want.requests) || fmt.Sprint(got.errors) != fmt.Sprint(want.errors) {
			t.Fatalf("counters differ: %v %v, expfmt %v %v\npage %q", got.requests, got.errors, want.requests, want.errors, raw)
		}
	})
}

// BenchmarkParseRED is the parse of one scrape of the shop's gateway (testdata/scrape/
// gateway.txt) by parseRED and by the expfmt path it replaced, side by side:
//
//	go test -run '^$' -bench ParseRED -benchmem ./internal/devrun/
func BenchmarkParseRED(b *testing.B) {
	page, err := os.ReadFile("testdata/scrape/gateway.txt")
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct {
		name  string
		parse func([]byte) (scrape, error)
	}{{"parseRED", parseRED}, {"expfmt", scrapeExpfmt}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if sc, err := p.parse(page); err != nil || len(sc.requests) == 0 {
					b.Fatalf("%v, %d series", err, len(sc.requests))
				}
			}
		})
	}
}
