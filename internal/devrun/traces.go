package devrun

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one span received over OTLP.
type Span struct {
	TraceID  string            `json:"trace_id"`
	SpanID   string            `json:"span_id"`
	ParentID string            `json:"parent_id,omitempty"`
	Service  string            `json:"service"`
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Start    time.Time         `json:"start"`
	End      time.Time         `json:"end"`
	Error    bool              `json:"error"`
	Canceled bool              `json:"canceled,omitempty"` // ended because its caller went away; then not Error
	Status   string            `json:"status,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
}

// canceled tells a span of a request its client cancelled — svcerr's kind canceled
// (svckit.error.kind), HTTP 499, gRPC CANCELLED, error.type canceled, or a status that
// says context canceled — from a failure: the server did nothing wrong.
func canceled(s *Span) bool {
	a := s.Attrs
	switch {
	case a["svckit.error.kind"] == "canceled", a["http.response.status_code"] == "499", a["http.status_code"] == "499",
		a["rpc.grpc.status_code"] == "1", a["rpc.response.status_code"] == "CANCELLED", // semconv before v1.40 and from it
		strings.EqualFold(a["error.type"], "canceled"), a["error.type"] == "context.Canceled":
		return true
	}
	st := strings.ToLower(s.Status)
	return strings.Contains(st, "context canceled") || strings.Contains(st, "request canceled")
}

// Duration returns End - Start.
func (s *Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Trace is the spans of one trace id received so far.
type Trace struct {
	ID       string    `json:"id"`
	Spans    []Span    `json:"spans"`
	Received time.Time `json:"received"`
}

// Root returns the span without a parent in the trace, or the earliest span.
func (t *Trace) Root() *Span {
	var root *Span
	for i := range t.Spans {
		s := &t.Spans[i]
		if s.ParentID == "" {
			return s
		}
		if root == nil || s.Start.Before(root.Start) {
			root = s
		}
	}
	return root
}

// Summary describes a trace in lists.
type Summary struct {
	ID       string        `json:"id"`
	Root     string        `json:"root"`
	Service  string        `json:"service"`
	Services []string      `json:"services"`
	Spans    int           `json:"spans"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Error    bool          `json:"error"`
	Canceled bool          `json:"canceled,omitempty"` // a span was cancelled by its caller
}

// Summarize returns the trace's summary.
func (t *Trace) Summarize() Summary {
	s := Summary{ID: t.ID, Spans: len(t.Spans)}
	if r := t.Root(); r != nil {
		s.Root, s.Service, s.Start = r.Name, r.Service, r.Start
	}
	var end time.Time
	seen := map[string]bool{}
	for i := range t.Spans {
		sp := &t.Spans[i]
		if sp.Start.Before(s.Start) || s.Start.IsZero() {
			s.Start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		if sp.Error {
			s.Error = true
		}
		if sp.Canceled {
			s.Canceled = true
		}
		if !seen[sp.Service] {
			seen[sp.Service] = true
			s.Services = append(s.Services, sp.Service)
		}
	}
	sort.Strings(s.Services)
	s.Duration = end.Sub(s.Start)
	return s
}

// TraceStore keeps the most recent traces, bounded by count; the oldest trace is dropped
// first.
type TraceStore struct {
	mu     sync.RWMutex
	traces map[string]*Trace
	order  []string // trace ids, oldest first (a ring)
	head   int
	limit  int
	spans  int
}

// NewTraceStore keeps at most limit traces (default 10,000); a trace keeps at most its
// first 1,000 spans.
func NewTraceStore(limit int) *TraceStore {
	if limit <= 0 {
		limit = 10_000
	}
	return &TraceStore{traces: make(map[string]*Trace), limit: limit}
}

const maxSpansPerTrace = 1000

// Add stores spans.
func (s *TraceStore) Add(spans []Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range spans {
		t, ok := s.traces[sp.TraceID]
		if !ok {
			t = &Trace{ID: sp.TraceID, Received: time.Now()}
			if len(s.order) < s.limit {
				s.order = append(s.order, sp.TraceID)
			} else {
				old := s.order[s.head]
				if ot := s.traces[old]; ot != nil {
					s.spans -= len(ot.Spans)
				}
				delete(s.traces, old)
				s.order[s.head] = sp.TraceID
				s.head = (s.head + 1) % s.limit
			}
			s.traces[sp.TraceID] = t
		}
		if len(t.Spans) < maxSpansPerTrace {
			t.Spans = append(t.Spans, sp)
			s.spans++
		}
	}
}

// Get returns a copy of the trace with the given id, spans ordered by start time.
func (s *TraceStore) Get(id string) (Trace, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.traces[id]
	if !ok {
		return Trace{}, false
	}
	c := Trace{ID: t.ID, Received: t.Received, Spans: slices.Clone(t.Spans)}
	slices.SortFunc(c.Spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return c, true
}

// TraceFilter selects traces; empty fields match everything.
type TraceFilter struct {
	Service     string
	Name        string // substring of any span's name (the endpoint)
	ErrorsOnly  bool
	MinDuration time.Duration
	ID          string // prefix of the trace id
	Limit       int    // default 100
}

// Query returns summaries of the most recent matching traces, newest first.
func (s *TraceStore) Query(f TraceFilter) []Summary {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Summary
	n := len(s.order)
	for i := 0; i < n && len(out) < f.Limit; i++ {
		idx := (s.head - 1 - i + 2*n) % n // head is the oldest slot once the ring is full, 0 before
		t := s.traces[s.order[idx]]
		if t == nil || (f.ID != "" && !strings.HasPrefix(t.ID, f.ID)) {
			continue
		}
		if f.Service != "" || f.Name != "" {
			match := false
			for j := range t.Spans {
				sp := &t.Spans[j]
				if (f.Service == "" || sp.Service == f.Service) && (f.Name == "" || strings.Contains(sp.Name, f.Name)) {
					match = true
					break
				}
			}
			if !match {
				continue
			}
		}
		sum := t.Summarize()
		if (f.ErrorsOnly && !sum.Error) || sum.Duration < f.MinDuration {
			continue
		}
		out = append(out, sum)
	}
	return out
}

// Stats returns the number of traces and spans kept.
func (s *TraceStore) Stats() (traces, spans int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.traces), s.spans
}

// Edges returns who calls whom as seen in the stored traces: for every span whose parent
// belongs to another service, an edge parent service → child service, with a count.
func (s *TraceStore) Edges() map[[2]string]int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	edges := map[[2]string]int{}
	for _, t := range s.traces {
		byID := make(map[string]*Span, len(t.Spans))
		for i := range t.Spans {
			byID[t.Spans[i].SpanID] = &t.Spans[i]
		}
		for i := range t.Spans {
			sp := &t.Spans[i]
			if p := byID[sp.ParentID]; p != nil && p.Service != sp.Service {
				edges[[2]string{p.Service, sp.Service}]++
			}
		}
	}
	return edges
}

// OTLPHandler receives OTLP/HTTP trace exports (POST /v1/traces, protobuf) into s.
func (s *TraceStore) OTLPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, fmt.Sprintf("unsupported content type %q: send application/x-protobuf", ct), http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, "malformed OTLP request: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.Add(SpansFromOTLP(&req))
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
}

// SpansFromOTLP flattens an OTLP export request.
func SpansFromOTLP(req *collectortrace.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		service := "unknown"
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := Span{
					TraceID: hex.EncodeToString(sp.GetTraceId()),
					SpanID:  hex.EncodeToString(sp.GetSpanId()),
					Service: service,
					Name:    sp.GetName(),
					Kind:    strings.ToLower(strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_")),
					Start:   time.Unix(0, int64(sp.GetStartTimeUnixNano())),
					End:     time.Unix(0, int64(sp.GetEndTimeUnixNano())),
					Error:   sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
					Status:  sp.GetStatus().GetMessage(),
				}
				if len(sp.GetParentSpanId()) > 0 {
					s.ParentID = hex.EncodeToString(sp.GetParentSpanId())
				}
				if attrs := sp.GetAttributes(); len(attrs) > 0 {
					s.Attrs = make(map[string]string, len(attrs))
					for _, kv := range attrs {
						s.Attrs[kv.GetKey()] = anyValue(kv.GetValue())
					}
				}
				if canceled(&s) {
					s.Canceled, s.Error = true, false
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	}
	return v.String()
}
