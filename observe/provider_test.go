package observe

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
)

// clearOTelEnv unsets every OTEL_* variable for the test; they are restored afterwards.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "") // registers the restore
			if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func setEnv(t *testing.T, kv map[string]string) {
	t.Helper()
	clearOTelEnv(t)
	for k, v := range kv {
		t.Setenv(k, v)
	}
}

// sampledParent returns a context with a sampled remote parent span context.
func sampledParent() context.Context {
	tid, _ := trace.TraceIDFromHex(remoteTraceID)
	sid, _ := trace.SpanIDFromHex(remoteSpanID)
	return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true,
	}))
}

func TestNewTracerProviderSampling(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		sampler      sdktrace.Sampler
		wantRoot     bool // a root span is recorded and exported
		wantChild    bool // a child of a sampled remote parent is recorded and exported
		wantSpanCtxs bool // spans get valid span contexts (ids for logs and propagation)
	}{
		{"default", nil, nil, true, true, true},
		{"always_off", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, nil, false, false, true},
		{"ratio 0", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, nil, false, false, true},
		{"parent based ratio 0", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, nil, false, true, true},
		{"option overrides env", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, sdktrace.AlwaysSample(), true, true, true},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true"}, nil, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			exp := tracetest.NewInMemoryExporter()
			tp, err := NewTracerProvider(t.Context(), TracingOptions{Service: "svc", Exporter: exp, Sampler: tt.sampler})
			if err != nil {
				t.Fatal(err)
			}
			tracer := tp.Tracer("test")
			_, root := tracer.Start(context.Background(), "root")
			_, child := tracer.Start(sampledParent(), "child")
			if root.SpanContext().IsValid() != tt.wantSpanCtxs {
				t.Errorf("root span context valid = %v", root.SpanContext().IsValid())
			}
			if root.IsRecording() != tt.wantRoot || child.IsRecording() != tt.wantChild {
				t.Errorf("recording root, child = %v, %v, want %v, %v", root.IsRecording(), child.IsRecording(), tt.wantRoot, tt.wantChild)
			}
			root.End()
			child.End()
			// The in-memory exporter forgets its spans on Shutdown: flush, count, then shut down.
			if err := tp.ForceFlush(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tp.Shutdown(context.Background()) }()
			want := 0
			if tt.wantRoot {
				want++
			}
			if tt.wantChild {
				want++
			}
			if got := len(exp.GetSpans()); got != want {
				t.Errorf("exported %d spans, want %d", got, want)
			}
		})
	}
}

func TestNewTracerProviderNoExporter(t *testing.T) {
	// With nothing configured, root spans are not sampled (tracing costs next to nothing),
	// but ids exist for logs and a sampled caller's decision is kept downstream.
	setEnv(t, nil)
	tp, err := NewTracerProvider(t.Context(), TracingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, root := tp.Tracer("test").Start(context.Background(), "root")
	if root.IsRecording() || !root.SpanContext().IsValid() || root.SpanContext().IsSampled() {
		t.Errorf("root: recording %v, valid %v, sampled %v; want false, true, false",
			root.IsRecording(), root.SpanContext().IsValid(), root.SpanContext().IsSampled())
	}
	_, child := tp.Tracer("test").Start(sampledParent(), "child")
	if !child.SpanContext().IsSampled() || child.SpanContext().TraceID().String() != remoteTraceID {
		t.Errorf("child of a sampled parent: sampled %v, trace %v", child.SpanContext().IsSampled(), child.SpanContext().TraceID())
	}
}

func TestNewTracerProviderEnvErrors(t *testing.T) {
	tests := []map[string]string{
		{"OTEL_TRACES_SAMPLER": "sometimes"},
		{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
		{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
		{"OTEL_TRACES_EXPORTER": "zipkin"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector"},
		{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_INSECURE": "maybe"},
	}
	for _, env := range tests {
		setEnv(t, env)
		if tp, err := NewTracerProvider(t.Context(), TracingOptions{}); err == nil {
			_ = tp.Shutdown(t.Context())
			t.Errorf("env %v: no error", env)
		}
	}
	// A refused protocol is named by the variable it came from.
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "otlp", name: "http/json"})
		_, err := NewTracerProvider(t.Context(), TracingOptions{})
		if err == nil || !strings.Contains(err.Error(), name+` "http/json"`) {
			t.Errorf("%s=http/json: %v", name, err)
		}
	}
}

// otlpHTTPServer is a loopback OTLP/HTTP receiver that records the requests it gets.
type otlpHTTPServer struct {
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
	cts  []string
}

func (s *otlpHTTPServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || len(body) == 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, &req)
	s.cts = append(s.cts, r.Header.Get("Content-Type"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// spanNames returns the service name and span names in reqs.
func spanNames(reqs []*collectortrace.ExportTraceServiceRequest) (service string, names []string) {
	for _, req := range reqs {
		for _, rs := range req.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
	}
	return service, names
}

func TestNewTracerProviderOTLPHTTP(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantService string
		wantSpans   int
	}{
		{"endpoint implies otlp", map[string]string{}, "greeter", 1},
		{"explicit otlp and service name from env", map[string]string{
			"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "from-env", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		}, "from-env", 1},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "TRUE"}, "", 0},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := &otlpHTTPServer{}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			setEnv(t, env)

			tp, err := NewTracerProvider(t.Context(), TracingOptions{Service: "greeter", Version: "1.0.0"})
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "greeter/Hello")
			span.End()
			if err := tp.Shutdown(t.Context()); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}

			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			service, names := spanNames(rcv.reqs)
			if len(names) != tt.wantSpans {
				t.Fatalf("received spans %v, want %d", names, tt.wantSpans)
			}
			if tt.wantSpans == 0 {
				return
			}
			if names[0] != "greeter/Hello" || service != tt.wantService {
				t.Errorf("received span %q of service %q, want greeter/Hello of %q", names[0], service, tt.wantService)
			}
			if rcv.cts[0] != "application/x-protobuf" {
				t.Errorf("Content-Type = %q", rcv.cts[0])
			}
		})
	}
}

// otlpGRPCServer is a loopback OTLP/gRPC receiver.
type otlpGRPCServer struct {
	collectortrace.UnimplementedTraceServiceServer
	mu   sync.Mutex
	reqs []*collectortrace.ExportTraceServiceRequest
}

func (s *otlpGRPCServer) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.mu.Unlock()
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestNewTracerProviderOTLPGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcv := &otlpGRPCServer{}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, rcv)
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	setEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://" + lis.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc", // the traces variable wins
	})
	tp, err := NewTracerProvider(t.Context(), TracingOptions{Service: "greeter"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "greeter/Hello")
	span.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	service, names := spanNames(rcv.reqs)
	if len(names) != 1 || names[0] != "greeter/Hello" || service != "greeter" {
		t.Errorf("received spans %v of service %q", names, service)
	}
}

func TestNewTracerProviderConsole(t *testing.T) {
	setEnv(t, map[string]string{"OTEL_TRACES_EXPORTER": "console, none"})
	var buf bytes.Buffer
	tp, err := NewTracerProvider(t.Context(), TracingOptions{Service: "greeter", ConsoleWriter: &buf})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("test").Start(context.Background(), "parent")
	_, span := tp.Tracer("test").Start(ctx, "child", trace.WithSpanKind(trace.SpanKindServer))
	span.End()
	parent.End()
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := jsonLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	var child consoleSpan
	raw, _ := json.Marshal(lines[0])
	if err := json.Unmarshal(raw, &child); err != nil {
		t.Fatal(err)
	}
	if child.Name != "child" || child.Kind != "server" || child.Service != "greeter" ||
		child.ParentSpanID != parent.SpanContext().SpanID().String() || child.TraceID != parent.SpanContext().TraceID().String() {
		t.Errorf("console span = %+v", child)
	}
}

// TestNoGlobalGRPCCompressor guards one reason svckit has its own OTLP exporters: the
// official ones register gzip for the whole process, and every gRPC client of a process
// with a registered compressor sends it in a grpc-accept-encoding header on every call,
// which costs each call a header on both ends. Linking observe must register none.
func TestNoGlobalGRPCCompressor(t *testing.T) {
	if encoding.GetCompressor("gzip") != nil {
		t.Fatal("a gRPC compressor named gzip is registered in a binary that links observe")
	}
}
