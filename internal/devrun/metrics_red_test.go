package devrun

import (
	"bytes"
	"os"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

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
