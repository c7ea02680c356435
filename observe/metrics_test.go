package observe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/svcerr"
)

// findMetric returns the metric of family name whose labels include want, or nil.
func findMetric(fams []*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			have := make(map[string]string)
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

func gather(t *testing.T, g prometheus.Gatherer) []*dto.MetricFamily {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func TestMetricsMiddleware(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var result error
	ep := func(context.Context, string) (string, error) { return "ok", result }
	server := endpoint.Wrap(endpoint.Info{Service: "greeter", Method: "Hello", Transport: "http"}, ep, m.Middleware())
	client := endpoint.Wrap(endpoint.Info{Service: "greeter", Method: "Hello", Transport: "grpc", Client: true}, ep, m.Middleware())

	calls := []struct {
		e   endpoint.Endpoint[string, string]
		err error
	}{
		{server, nil},
		{server, nil},
		{server, svcerr.New(svcerr.NotFound, "x")},
		{server, svcerr.New(svcerr.NotFound, "y")},
		{server, errors.New("boom")},
		{server, &svcerr.Error{Kind: 200}}, // a kind past the known ones
		{client, svcerr.New(svcerr.Unavailable, "down")},
		{client, nil},
	}
	for _, c := range calls {
		result = c.err
		if _, err := c.e(context.Background(), "x"); err != c.err {
			t.Fatalf("err = %v, want %v", err, c.err)
		}
	}

	fams := gather(t, reg)
	srv := map[string]string{"transport": "http", "service": "greeter", "method": "Hello", "side": "server"}
	cli := map[string]string{"transport": "grpc", "service": "greeter", "method": "Hello", "side": "client"}
	with := func(base map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for bk, bv := range base {
			out[bk] = bv
		}
		return out
	}
	counters := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"svckit_requests_total", srv, 6},
		{"svckit_requests_total", cli, 2},
		{"svckit_request_errors_total", with(srv, "kind", "not_found"), 2},
		{"svckit_request_errors_total", with(srv, "kind", "internal"), 1},
		{"svckit_request_errors_total", with(srv, "kind", "kind(200)"), 1},
		{"svckit_request_errors_total", with(cli, "kind", "unavailable"), 1},
	}
	for _, c := range counters {
		got := findMetric(fams, c.name, c.labels)
		if got == nil {
			t.Errorf("%s%v missing", c.name, c.labels)
			continue
		}
		if v := got.GetCounter().GetValue(); v != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	if got := findMetric(fams, "svckit_request_errors_total", with(cli, "kind", "not_found")); got != nil {
		t.Errorf("client not_found series exists: %v", got)
	}
	for _, l := range []map[string]string{srv, cli} {
		h := findMetric(fams, "svckit_request_duration_seconds", l)
		want := map[string]uint64{"server": 6, "client": 2}[l["side"]]
		if h == nil || h.GetHistogram().GetSampleCount() != want {
			t.Errorf("duration histogram %v = %v, want count %d", l, h, want)
			continue
		}
		if n := len(h.GetHistogram().GetBucket()); n != len(DefaultBuckets) {
			t.Errorf("histogram has %d buckets, want %d", n, len(DefaultBuckets))
		}
		g := findMetric(fams, "svckit_requests_in_flight", l)
		if g == nil || g.GetGauge().GetValue() != 0 {
			t.Errorf("in flight %v = %v, want 0", l, g)
		}
	}
}

func TestMetricsInFlight(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"method": "Slow"}
	var inside float64 = -1
	ep := func(context.Context, any) (any, error) {
		inside = findMetric(gather(t, reg), "svckit_requests_in_flight", labels).GetGauge().GetValue()
		return nil, nil
	}
	h := m.Middleware()(endpoint.Info{Service: "s", Method: "Slow", Transport: "http"}, ep)
	if _, err := h(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if inside != 1 {
		t.Errorf("in flight during the call = %v, want 1", inside)
	}
}

func TestNewMetricsOptions(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg, WithNamespace("shop"), WithBuckets([]float64{0.1, 1}),
		WithConstLabels(prometheus.Labels{"version": "1.2"}), WithNativeHistograms(1.1, 0))
	if err != nil {
		t.Fatal(err)
	}
	// A second NewMetrics on the same registry shares the collectors.
	m2, err := NewMetrics(reg, WithNamespace("shop"), WithBuckets([]float64{0.1, 1}),
		WithConstLabels(prometheus.Labels{"version": "1.2"}), WithNativeHistograms(1.1, 0))
	if err != nil {
		t.Fatalf("second NewMetrics: %v", err)
	}
	info := endpoint.Info{Service: "s", Method: "M", Transport: "nats"}
	ep := func(context.Context, any) (any, error) { return nil, nil }
	_, _ = m.Middleware()(info, ep)(context.Background(), nil)
	_, _ = m2.Middleware()(info, ep)(context.Background(), nil)

	fams := gather(t, reg)
	c := findMetric(fams, "shop_requests_total", map[string]string{"version": "1.2", "transport": "nats"})
	if c == nil || c.GetCounter().GetValue() != 2 {
		t.Errorf("shop_requests_total = %v, want 2", c)
	}
	h := findMetric(fams, "shop_request_duration_seconds", nil)
	if h == nil || len(h.GetHistogram().GetBucket()) != 2 || h.GetHistogram().Schema == nil {
		t.Errorf("histogram = %v, want 2 classic buckets and native buckets", h)
	}

	// A different metric under an existing name is an error.
	if err := reg.Register(prometheus.NewCounter(prometheus.CounterOpts{Name: "other_requests_total"})); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg, WithNamespace("other")); err == nil {
		t.Error("NewMetrics over a conflicting metric succeeded")
	}
}

func TestNewRegistryAndHandler(t *testing.T) {
	reg := NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ep := func(context.Context, any) (any, error) { return nil, svcerr.New(svcerr.NotFound, "x") }
	_, _ = m.Middleware()(endpoint.Info{Service: "s", Method: "M", Transport: "http"}, ep)(context.Background(), nil)

	srv := httptest.NewServer(MetricsHandler(reg))
	defer srv.Close()

	get := func(accept string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s", resp.Status)
		}
		return resp
	}

	for _, accept := range []string{"", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"} {
		resp := get(accept)
		dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
		names := make(map[string]*dto.MetricFamily)
		for {
			var f dto.MetricFamily
			if err := dec.Decode(&f); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("Accept %q: decoding: %v", accept, err)
			}
			names[f.GetName()] = &f
		}
		for _, want := range []string{
			"go_goroutines", "go_memstats_alloc_bytes", "go_sched_latencies_seconds", "go_gc_duration_seconds",
			"process_cpu_seconds_total", "svckit_requests_total", "svckit_request_errors_total",
			"svckit_request_duration_seconds", "svckit_requests_in_flight",
		} {
			if names[want] == nil {
				t.Errorf("Accept %q: %s missing", accept, want)
			}
		}
	}

	resp := get("application/openmetrics-text;version=1.0.0")
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type = %q, want OpenMetrics", ct)
	}
	if !strings.HasSuffix(string(body), "# EOF\n") || !strings.Contains(string(body), `svckit_request_errors_total{kind="not_found",method="M",service="s",side="server",transport="http"} 1.0`) {
		t.Errorf("OpenMetrics body:\n%s", body)
	}
}
