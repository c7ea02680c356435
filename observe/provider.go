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

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

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

// NewTracerProvider returns an OpenTelemetry SDK tracer provider configured by opts and by
// the standard environment variables:
//
//   - OTEL_SDK_DISABLED=true: a provider that samples and exports nothing.
//   - OTEL_TRACES_EXPORTER: a comma-separated list of "otlp", "console" and "none". Unset,
//     it is "otlp" if OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
//     set, and "none" otherwise.
//   - OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/protobuf" (the
//     default, exported by svckit's [otlp.Exporter]), "http/json" or "grpc" (the
//     OpenTelemetry exporters). The exporters read the other OTEL_EXPORTER_OTLP_*
//     variables (endpoint, headers, timeout, TLS, compression) themselves.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: the sampler, parentbased_always_on by
//     default. With no exporter and no sampler configured, root spans are not sampled, so
//     that tracing costs next to nothing, while sampled remote parents stay sampled.
//   - OTEL_BSP_*: the [BatchProcessor] through which every exporter gets its spans (an
//     invalid value is an error naming the variable).
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: resource attributes; they take
//     precedence over opts.Service and opts.Version.
//
// The caller must call Shutdown on the provider before exiting, to flush buffered spans.
func NewTracerProvider(ctx context.Context, opts TracingOptions) (*sdktrace.TracerProvider, error) {
	if disabled, _ := strconv.ParseBool(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED"))); disabled {
		return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample())), nil
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
	return sdktrace.NewTracerProvider(tpo...), nil
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
	proto := strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	if proto == "" {
		proto = strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"))
	}
	var (
		e   sdktrace.SpanExporter
		err error
	)
	switch proto {
	case "", "http/protobuf":
		// svckit's own exporter: the same bytes as otlptracehttp's, at a fifth of the CPU
		// per span (see package otlp).
		e, err = otlp.NewHTTPExporter(ctx)
	case "http/json":
		e, err = otlptracehttp.New(ctx)
	case "grpc":
		e, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("observe: OTLP traces: unsupported protocol %q", proto)
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
