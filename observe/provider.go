package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/svckit/svckit/observe/otlp"
)

// TracingOptions configures NewTracerProvider.
type TracingOptions struct {
	// Service is the service.name resource attribute, unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES sets it.
	Service string
	// Version is the service.version resource attribute, if set.
	Version string
	// Exporter, if set, receives the spans instead of the exporters that
	// OTEL_TRACES_EXPORTER names.
	Exporter sdktrace.SpanExporter
	// Sampler, if set, replaces the sampler that OTEL_TRACES_SAMPLER names.
	Sampler sdktrace.Sampler
	// ConsoleWriter is where the "console" exporter writes, one JSON object per span and
	// line; nil means standard error, which keeps spans out of the log stream on standard
	// output.
	ConsoleWriter io.Writer
}

// TracerProvider is the tracer provider NewTracerProvider returns: either svckit's lean
// implementation of the OpenTelemetry trace API ([otlp.TracerProvider]), on the default
// path where spans go to one OTLP http/protobuf endpoint, or an OpenTelemetry SDK
// provider ([sdktrace.TracerProvider]) for every other configuration. Both honour the
// same sampler, span limits, resource and OTEL_BSP_* batching; see NewTracerProvider.
type TracerProvider struct {
	embedded.TracerProvider
	sdk  *sdktrace.TracerProvider
	lean *otlp.TracerProvider
}

var _ trace.TracerProvider = (*TracerProvider)(nil)

// Tracer returns the tracer of an instrumentation scope.
func (p *TracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	if p.lean != nil {
		return p.lean.Tracer(name, opts...)
	}
	return p.sdk.Tracer(name, opts...)
}

// ForceFlush exports the spans ended so far, and returns when they are exported or ctx
// ends.
func (p *TracerProvider) ForceFlush(ctx context.Context) error {
	if p.lean != nil {
		return p.lean.ForceFlush(ctx)
	}
	return p.sdk.ForceFlush(ctx)
}

// Shutdown exports the spans still queued and stops exporting; spans that end afterwards
// are dropped. The caller must call it before exiting.
func (p *TracerProvider) Shutdown(ctx context.Context) error {
	if p.lean != nil {
		return p.lean.Shutdown(ctx)
	}
	return p.sdk.Shutdown(ctx)
}

// SDK returns the OpenTelemetry SDK provider behind p, to register span processors on or
// to hand to code that wants one, or nil when p is the lean provider.
func (p *TracerProvider) SDK() *sdktrace.TracerProvider { return p.sdk }

// Lean returns the lean provider behind p, or nil when p is an SDK provider.
func (p *TracerProvider) Lean() *otlp.TracerProvider { return p.lean }

// NewTracerProvider returns a tracer provider configured by opts and by the standard
// environment variables:
//
//   - OTEL_SDK_DISABLED=true: a provider that samples and exports nothing.
//   - OTEL_TRACES_EXPORTER: a comma-separated list of "otlp", "console" and "none". Unset,
//     it is "otlp" if OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
//     set, and "none" otherwise.
//   - OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf" (the
//     default, [otlp.NewHTTPExporter]) or "grpc" ([otlp.NewGRPCExporter]); "http/json" is
//     refused. The exporters read the other OTEL_EXPORTER_OTLP_* variables (endpoint,
//     headers, timeout, TLS, compression) themselves.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: the sampler, parentbased_always_on by
//     default. With no exporter and no sampler configured, root spans are not sampled, so
//     that tracing costs next to nothing, while sampled remote parents stay sampled.
//   - OTEL_BSP_*: the batching of exported spans (an invalid value is an error naming the
//     variable).
//   - OTEL_SPAN_*_LIMIT: the span limits, 128 attributes, events and links by default.
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: resource attributes; they take
//     precedence over opts.Service and opts.Version.
//
// When the only exporter is OTLP (no opts.Exporter, no "console"), over either protocol,
// the provider is svckit's lean one, [otlp.TracerProvider]:
// the same spans on the wire at less than half the CPU per recorded span, since it skips
// the SDK's per-span snapshot and span processors. Otherwise it is an OpenTelemetry SDK
// provider whose exporters get their spans through a [BatchProcessor];
// [TracerProvider.SDK] returns it.
//
// The caller must call Shutdown on the provider before exiting, to flush buffered spans.
func NewTracerProvider(ctx context.Context, opts TracingOptions) (*TracerProvider, error) {
	if disabled, _ := strconv.ParseBool(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED"))); disabled {
		return &TracerProvider{sdk: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))}, nil
	}
	if opts.Sampler == nil {
		if err := checkSamplerEnv(); err != nil {
			return nil, err
		}
	}
	res, err := newResource(ctx, opts)
	if err != nil {
		return nil, err
	}
	bo, err := BatchOptionsFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	var exporters []sdktrace.SpanExporter
	if opts.Exporter != nil {
		exporters = []sdktrace.SpanExporter{opts.Exporter}
	} else if exporters, err = exportersFromEnv(ctx, opts); err != nil {
		return nil, err
	}

	if len(exporters) == 1 && opts.Exporter == nil {
		if exp, ok := exporters[0].(*otlp.Exporter); ok {
			sampler := opts.Sampler
			if sampler == nil {
				sampler = samplerFromEnv()
			}
			return &TracerProvider{lean: otlp.NewTracerProvider(exp, otlp.ProviderOptions{
				Resource:           res,
				Sampler:            sampler,
				ScheduleDelay:      bo.ScheduleDelay,
				ExportTimeout:      bo.ExportTimeout,
				MaxQueueSize:       bo.MaxQueueSize,
				MaxExportBatchSize: bo.MaxExportBatchSize,
			})}, nil
		}
	}

	tpo := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	switch {
	case opts.Sampler != nil:
		tpo = append(tpo, sdktrace.WithSampler(opts.Sampler))
	case len(exporters) == 0 && strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")) == "":
		tpo = append(tpo, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	}
	// Otherwise the SDK reads OTEL_TRACES_SAMPLER itself.
	for _, e := range exporters {
		tpo = append(tpo, sdktrace.WithSpanProcessor(NewBatchProcessor(e, bo)))
	}
	return &TracerProvider{sdk: sdktrace.NewTracerProvider(tpo...)}, nil
}

// samplerFromEnv returns the sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name,
// as the SDK reads them (checkSamplerEnv has checked them), or nil for the default.
func samplerFromEnv() sdktrace.Sampler {
	ratio := 1.0
	if arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG")); arg != "" {
		if r, err := strconv.ParseFloat(arg, 64); err == nil && r >= 0 && r <= 1 {
			ratio = r
		}
	}
	switch strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER"))) {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio)
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	}
	return nil
}

// newResource returns the default resource (SDK, default service name) merged with the
// service name and version from opts, overridden by the environment.
func newResource(ctx context.Context, opts TracingOptions) (*resource.Resource, error) {
	var attrs []resource.Option
	if opts.Service != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceName(opts.Service)))
	}
	if opts.Version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(opts.Version)))
	}
	attrs = append(attrs, resource.WithFromEnv())
	own, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("observe: tracing resource: %w", err)
	}
	res, err := resource.Merge(resource.Default(), own)
	if err != nil {
		return nil, fmt.Errorf("observe: tracing resource: %w", err)
	}
	return res, nil
}

// exportersFromEnv returns the exporters OTEL_TRACES_EXPORTER names.
func exportersFromEnv(ctx context.Context, opts TracingOptions) ([]sdktrace.SpanExporter, error) {
	names := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))
	if names == "" {
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, nil
		}
		names = "otlp"
	}
	var exps []sdktrace.SpanExporter
	fail := func(err error) ([]sdktrace.SpanExporter, error) {
		for _, e := range exps {
			_ = e.Shutdown(ctx)
		}
		return nil, err
	}
	for name := range strings.SplitSeq(names, ",") {
		switch name = strings.ToLower(strings.TrimSpace(name)); name {
		case "none", "":
		case "otlp":
			e, err := otlpExporter(ctx)
			if err != nil {
				return fail(err)
			}
			exps = append(exps, e)
		case "console":
			w := opts.ConsoleWriter
			if w == nil {
				w = os.Stderr
			}
			exps = append(exps, &consoleExporter{w: w})
		default:
			return fail(fmt.Errorf("observe: OTEL_TRACES_EXPORTER: unsupported exporter %q", name))
		}
	}
	return exps, nil
}

// otlpExporter returns the OTLP exporter for the configured protocol.
func otlpExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	proto := strings.TrimSpace(os.Getenv(name))
	if proto == "" {
		name = "OTEL_EXPORTER_OTLP_PROTOCOL"
		proto = strings.TrimSpace(os.Getenv(name))
	}
	var (
		e   sdktrace.SpanExporter
		err error
	)
	// svckit's own exporters: the same requests as otlptracehttp's and otlptracegrpc's,
	// at a fifth of the CPU per span (see package otlp), and without registering a gRPC
	// compressor for the whole process as those do.
	switch proto {
	case "", "http/protobuf":
		e, err = otlp.NewHTTPExporter(ctx)
	case "grpc":
		e, err = otlp.NewGRPCExporter(ctx)
	default:
		// http/json included: no exporter of svckit's sends JSON, and sending protobuf
		// to a collector that was told to expect JSON would fail later and less clearly.
		return nil, fmt.Errorf("observe: %s %q: unsupported; want http/protobuf or grpc", name, proto)
	}
	if err != nil {
		return nil, fmt.Errorf("observe: OTLP traces exporter: %w", err)
	}
	return e, nil
}

// checkSamplerEnv returns an error if OTEL_TRACES_SAMPLER or OTEL_TRACES_SAMPLER_ARG is
// invalid. The SDK reads them itself, but only reports errors to the global error handler.
func checkSamplerEnv() error {
	name := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER")))
	switch name {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
		return nil
	case "traceidratio", "parentbased_traceidratio":
		arg := strings.TrimSpace(os.Getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return fmt.Errorf("observe: OTEL_TRACES_SAMPLER_ARG %q: want a ratio from 0 to 1", arg)
		}
		return nil
	}
	return fmt.Errorf("observe: OTEL_TRACES_SAMPLER: unsupported sampler %q", name)
}

// consoleExporter writes one JSON object per span and line.
type consoleExporter struct {
	mu       sync.Mutex
	w        io.Writer
	shutdown bool
}

var _ sdktrace.SpanExporter = (*consoleExporter)(nil)

type consoleSpan struct {
	Name         string            `json:"name"`
	TraceID      string            `json:"trace_id"`
	SpanID       string            `json:"span_id"`
	ParentSpanID string            `json:"parent_span_id,omitempty"`
	Kind         string            `json:"kind"`
	Start        time.Time         `json:"start"`
	DurationMS   float64           `json:"duration_ms"`
	Status       string            `json:"status,omitempty"`
	StatusMsg    string            `json:"status_message,omitempty"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	Service      string            `json:"service,omitempty"`
}

// ExportSpans writes spans.
func (c *consoleExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shutdown {
		return errors.New("observe: console exporter is shut down")
	}
	enc := json.NewEncoder(c.w)
	for _, s := range spans {
		if err := ctx.Err(); err != nil {
			return err
		}
		cs := consoleSpan{
			Name:       s.Name(),
			TraceID:    s.SpanContext().TraceID().String(),
			SpanID:     s.SpanContext().SpanID().String(),
			Kind:       s.SpanKind().String(),
			Start:      s.StartTime(),
			DurationMS: float64(s.EndTime().Sub(s.StartTime())) / float64(time.Millisecond),
		}
		if p := s.Parent(); p.IsValid() {
			cs.ParentSpanID = p.SpanID().String()
		}
		if st := s.Status(); st.Code != 0 {
			cs.Status, cs.StatusMsg = st.Code.String(), st.Description
		}
		if attrs := s.Attributes(); len(attrs) > 0 {
			cs.Attributes = make(map[string]string, len(attrs))
			for _, a := range attrs {
				cs.Attributes[string(a.Key)] = a.Value.Emit()
			}
		}
		if r := s.Resource(); r != nil {
			if v, ok := r.Set().Value(semconv.ServiceNameKey); ok {
				cs.Service = v.AsString()
			}
		}
		if err := enc.Encode(cs); err != nil {
			return fmt.Errorf("observe: console exporter: %w", err)
		}
	}
	return nil
}

// Shutdown stops the exporter.
func (c *consoleExporter) Shutdown(context.Context) error {
	c.mu.Lock()
	c.shutdown = true
	c.mu.Unlock()
	return nil
}
