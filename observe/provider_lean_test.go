package observe

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestNewTracerProviderPath checks which provider NewTracerProvider builds: the lean one
// exactly when the only exporter is the default OTLP http/protobuf one.
func TestNewTracerProviderPath(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		exporter sdktrace.SpanExporter
		wantLean bool
	}{
		{"otlp endpoint", nil, nil, true},
		{"otlp http/protobuf", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, nil, true},
		{"otlp and none", map[string]string{"OTEL_TRACES_EXPORTER": "none,otlp"}, nil, true},
		{"otlp and console", map[string]string{"OTEL_TRACES_EXPORTER": "otlp,console"}, nil, false},
		{"console", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, nil, false},
		{"grpc", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, nil, true},
		{"exporter option", nil, tracetest.NewInMemoryExporter(), false},
		{"none", map[string]string{"OTEL_TRACES_EXPORTER": "none"}, nil, false},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
			for k, v := range tt.env {
				env[k] = v
			}
			setEnv(t, env)
			tp, err := NewTracerProvider(t.Context(), TracingOptions{Service: "svc", Exporter: tt.exporter, ConsoleWriter: &testWriter{}})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tp.Shutdown(context.Background()) }()
			if got := tp.Lean() != nil; got != tt.wantLean {
				t.Errorf("lean = %v, want %v", got, tt.wantLean)
			}
			if (tp.SDK() == nil) != tt.wantLean {
				t.Errorf("SDK() = %v with lean %v: want exactly one of them", tp.SDK(), tt.wantLean)
			}
		})
	}
}

// testWriter discards what is written.
type testWriter struct{}

func (testWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestLeanProviderSampling checks that the lean provider applies the sampler that
// OTEL_TRACES_SAMPLER names, or opts.Sampler, as the SDK path does.
func TestLeanProviderSampling(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		sampler   sdktrace.Sampler
		wantSpans []string // exported, in order
	}{
		{"default", nil, nil, []string{"root", "child"}},
		{"always_on", map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}, nil, []string{"root", "child"}},
		{"always_off", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, nil, nil},
		{"ratio 0", map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, nil, nil},
		{"parent based ratio 0", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, nil, []string{"child"}},
		{"parent based always off", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, nil, []string{"child"}},
		{"option overrides env", map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}, sdktrace.AlwaysSample(), []string{"root", "child"}},
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
			tp, err := NewTracerProvider(t.Context(), TracingOptions{Service: "svc", Sampler: tt.sampler})
			if err != nil {
				t.Fatal(err)
			}
			if tp.Lean() == nil {
				t.Fatal("not the lean provider")
			}
			tracer := tp.Tracer("test")
			_, root := tracer.Start(context.Background(), "root")
			_, child := tracer.Start(sampledParent(), "child")
			if !root.SpanContext().IsValid() || !child.SpanContext().IsValid() {
				t.Error("invalid span context")
			}
			root.End()
			child.End()
			if err := tp.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			service, names := spanNames(rcv.reqs)
			if !slices.Equal(names, tt.wantSpans) || (len(names) > 0 && service != "svc") {
				t.Errorf("exported %v of service %q, want %v of svc", names, service, tt.wantSpans)
			}
		})
	}
}
