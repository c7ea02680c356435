package otlp

import (
	"context"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/svckit/svckit/internal/ctxprobe"
	"github.com/svckit/svckit/observe/internal/spanqueue"
)

// ProviderOptions configures [NewTracerProvider]. Zero fields take the defaults of the
// OpenTelemetry SDK and of its batch span processor.
type ProviderOptions struct {
	// Resource describes the process; nil is [resource.Default].
	Resource *resource.Resource
	// Sampler decides which spans are recorded and exported; nil is the SDK's default,
	// ParentBased(AlwaysSample).
	Sampler sdktrace.Sampler
	// SpanLimits bounds the attributes, events and links of a span, used as is (as
	// [sdktrace.WithRawSpanLimits] does: a depth limit of 0 is the default, 64); nil is
	// [sdktrace.NewSpanLimits] (the defaults, 128 of each, or the OTEL_SPAN_*_LIMIT
	// variables).
	SpanLimits *sdktrace.SpanLimits
	// ScheduleDelay is the longest an ended span waits before it is exported: 5 s by
	// default.
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export, retries included: 30 s by default.
	ExportTimeout time.Duration
	// MaxQueueSize is how many ended spans wait at most; spans that end while the queue
	// is full are dropped and counted. 2048 by default.
	MaxQueueSize int
	// MaxExportBatchSize is the most spans in one export request; a full batch is
	// exported at once. 512 by default, and never more than MaxQueueSize.
	MaxExportBatchSize int
}

// TracerProvider is a lean implementation of the OpenTelemetry trace API that exports
// its spans through an [Exporter], without the OpenTelemetry SDK's span machinery: a
// recorded span is a small struct (224 bytes) that refers to the attributes it starts with
// when they are an endpoint's fixed ones (StartSpanShared), ending it puts it in
// the export queue as it is (the SDK copies every span into a snapshot for its
// processors), and the export goroutine encodes the queued spans straight into an OTLP
// request, the resource once per request and the spans grouped by instrumentation
// scope.
//
// It gives what the SDK's provider with a batch span processor gives: the configured
// sampler (called with the span's parent context, trace id, name, kind, start attributes
// and links; its attributes and trace state are kept), parent-based propagation,
// non-recording spans with a valid span context for unsampled calls, span kinds,
// attributes (deduplicated, last value wins), events, links, RecordError with an
// optional stack, a panic recorded at End, SetStatus with the SDK's precedence, SetName,
// instrumentation scopes with version, schema URL and attributes, and the SDK's span
// limits with dropped counts and the SDK's normalization of attribute values (lengths,
// nested depth, duplicate map keys). Spans are safe for concurrent use, and calls on an
// ended span do nothing. What it does not have: span processors, ID generators and
// runtime/trace tasks.
//
// Ended spans wait in a bounded queue (MaxQueueSize); when it is full they are dropped
// and counted (see Dropped), never blocking the caller. The export goroutine posts a
// batch when MaxExportBatchSize spans are queued, after ScheduleDelay, on ForceFlush and
// on Shutdown.
type TracerProvider struct {
	embedded.TracerProvider

	exp     *Exporter
	res     *resource.Resource
	sampler sdktrace.Sampler
	// fastSampler is set when sampler is one of the SDK's samplers whose decision Start
	// makes itself, with the same result, without the interface call.
	fastSampler fastSampler
	limits      sdktrace.SpanLimits
	opts        ProviderOptions

	tmu     sync.Mutex
	tracers map[instrumentation.Scope]*tracer

	q *spanqueue.Queue[*span]
}

var _ trace.TracerProvider = (*TracerProvider)(nil)

// NewTracerProvider returns a provider whose sampled spans are exported through exp, and
// starts its export goroutine; Shutdown stops it and shuts exp down.
func NewTracerProvider(exp *Exporter, opts ProviderOptions) *TracerProvider {
	p := &TracerProvider{
		exp:     exp,
		res:     opts.Resource,
		sampler: opts.Sampler,
		opts:    opts,
		tracers: make(map[instrumentation.Scope]*tracer),
	}
	if p.res == nil {
		p.res = resource.Default()
	}
	p.q = spanqueue.New(spanqueue.Options{
		ScheduleDelay:      opts.ScheduleDelay,
		ExportTimeout:      opts.ExportTimeout,
		MaxQueueSize:       opts.MaxQueueSize,
		MaxExportBatchSize: opts.MaxExportBatchSize,
	}, "otlp", func(ctx context.Context, batch []*span) error { return exp.exportLean(ctx, p.res, batch) })
	if p.sampler == nil {
		p.sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
	// The SDK's own types (not a look-alike), with the same configuration.
	if on := sdktrace.AlwaysSample(); reflect.TypeOf(p.sampler) == reflect.TypeOf(on) {
		p.fastSampler = alwaysOn
	} else if pb := sdktrace.ParentBased(on); reflect.TypeOf(p.sampler) == reflect.TypeOf(pb) && p.sampler.Description() == pb.Description() {
		p.fastSampler = parentBasedAlwaysOn
	}
	if opts.SpanLimits != nil {
		p.limits = *opts.SpanLimits
	} else {
		p.limits = sdktrace.NewSpanLimits()
	}
	if p.limits.AttributeValueDepthLimit == 0 {
		p.limits.AttributeValueDepthLimit = sdktrace.DefaultAttributeValueDepthLimit
	}
	return p
}

// fastSampler names an SDK sampler that Start applies itself.
type fastSampler uint8

const (
	otherSampler        fastSampler = iota
	alwaysOn                        // sdktrace.AlwaysSample()
	parentBasedAlwaysOn             // sdktrace.ParentBased(sdktrace.AlwaysSample()), the default
)

// defaultTracerName is the scope name of a tracer asked for with an empty name, as in
// the SDK.
const defaultTracerName = "go.opentelemetry.io/otel/sdk/tracer"

// Tracer returns the tracer of an instrumentation scope; the same scope gives the same
// tracer. After Shutdown it returns a tracer whose spans do nothing.
func (p *TracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	if p.q.Stopped() {
		return noop.NewTracerProvider().Tracer(name, opts...)
	}
	if name == "" {
		name = defaultTracerName
	}
	c := trace.NewTracerConfig(opts...)
	scope := instrumentation.Scope{
		Name:       name,
		Version:    c.InstrumentationVersion(),
		SchemaURL:  c.SchemaURL(),
		Attributes: c.InstrumentationAttributes(),
	}
	p.tmu.Lock()
	defer p.tmu.Unlock()
	t, ok := p.tracers[scope]
	if !ok {
		t = &tracer{p: p, scope: scope}
		p.tracers[scope] = t
	}
	return t
}

// Dropped returns how many ended spans were dropped because the queue was full.
func (p *TracerProvider) Dropped() int64 { return p.q.Dropped() }

// enqueue queues an ended, sampled span for export, or drops it.
func (p *TracerProvider) enqueue(s *span) { p.q.Add(s) }

// ForceFlush exports every span ended so far, and returns when they are exported or ctx
// ends. It returns the error of the last failed export since the previous ForceFlush.
func (p *TracerProvider) ForceFlush(ctx context.Context) error { return p.q.ForceFlush(ctx) }

// Shutdown exports the spans still queued, stops the export goroutine and shuts the
// exporter down. Spans that end afterwards are not exported, and tracers asked for
// afterwards do nothing. It returns when done or when ctx ends.
func (p *TracerProvider) Shutdown(ctx context.Context) error {
	return p.q.Shutdown(ctx, p.exp.Shutdown)
}

// tracer starts the spans of one instrumentation scope.
type tracer struct {
	embedded.Tracer
	p     *TracerProvider
	scope instrumentation.Scope
}

var _ trace.Tracer = (*tracer)(nil)

// Start starts a span, child of the span context in ctx unless trace.WithNewRoot is
// given, and returns it with a context holding it.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := trace.NewSpanStartConfig(opts...)
	return t.start(ctx, name, cfg.SpanKind(), &cfg, nil, false)
}

// StartSpan starts a span of the given kind, child of the span context in ctx, and sets
// attrs on it after the sampler has decided (the sampler does not see them, as with
// Span.SetAttributes right after Start). It is Start without building a
// trace.SpanConfig from options on every call: observe.Tracing, which starts a span per
// served and per made call, uses it when the tracer has it.
func (t *tracer) StartSpan(ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	return t.start(ctx, name, kind, nil, attrs, false)
}

// StartSpanShared is StartSpan for attrs that no one changes while the span may still
// read them — a slice built once per endpoint: the span refers to attrs instead of
// copying them (it copies them before setting more), so a span is 144 bytes smaller.
// observe.Tracing uses it when the tracer has it.
func (t *tracer) StartSpanShared(ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	return t.start(ctx, name, kind, nil, attrs, true)
}

// start starts a span; cfg, when not nil, holds the options of Start, and attrs are set
// after sampling (without a copy when shared, see StartSpanShared).
func (t *tracer) start(ctx context.Context, name string, kind trace.SpanKind, cfg *trace.SpanConfig, attrs []attribute.KeyValue, shared bool) (context.Context, trace.Span) {
	var psc trace.SpanContext
	if cfg != nil && cfg.NewRoot() {
		ctx = trace.ContextWithSpanContext(ctx, psc)
	} else {
		psc = trace.SpanContextFromContext(ctx)
	}
	var tid trace.TraceID
	if psc.TraceID().IsValid() {
		tid = psc.TraceID()
	} else {
		tid = newTraceID()
	}
	sid := newSpanID()

	var sr sdktrace.SamplingResult
	switch t.p.fastSampler {
	case alwaysOn:
		sr = sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: psc.TraceState()}
	case parentBasedAlwaysOn:
		sr.Tracestate = psc.TraceState()
		if !psc.IsValid() || psc.IsSampled() {
			sr.Decision = sdktrace.RecordAndSample
		}
	default:
		sp := sdktrace.SamplingParameters{ParentContext: ctx, TraceID: tid, Name: name, Kind: kind}
		if cfg != nil {
			sp.Attributes, sp.Links = cfg.Attributes(), cfg.Links()
		}
		sr = t.p.sampler.ShouldSample(sp)
	}
	scc := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceState: sr.Tracestate}
	if sr.Decision == sdktrace.RecordAndSample {
		scc.TraceFlags = psc.TraceFlags() | trace.FlagsSampled
	} else {
		scc.TraceFlags = psc.TraceFlags() &^ trace.FlagsSampled
	}
	sc := trace.NewSpanContext(scc)
	if sr.Decision != sdktrace.RecordOnly && sr.Decision != sdktrace.RecordAndSample {
		ns := &nonRecordingSpan{p: t.p, sc: sc}
		return trace.ContextWithSpan(ctx, ns), ns
	}

	var start time.Time
	if cfg != nil {
		start = cfg.Timestamp()
	}
	if start.IsZero() {
		start = time.Now()
	}
	s := &span{
		tracer: t,
		sc:     sc,
		psid:   psc.SpanID(),
		remote: psc.IsRemote(),
		name:   name,
		kind:   trace.ValidateSpanKind(kind),
		start:  start,
	}
	if cfg != nil {
		for _, l := range cfg.Links() {
			if !l.SpanContext.IsValid() && len(l.Attributes) == 0 && l.SpanContext.TraceState().Len() == 0 {
				continue
			}
			s.addLink(l)
		}
	}
	if len(sr.Attributes) > 0 {
		s.setAttributes(sr.Attributes)
	}
	if cfg != nil {
		attrs = cfg.Attributes()
	}
	if len(attrs) > 0 && !(shared && s.attrs == nil && s.setShared(attrs)) {
		s.setAttributes(attrs)
	}
	if spanKey != nil {
		return &spanContext{Context: ctx, s: s}, s
	}
	return trace.ContextWithSpan(ctx, s), s
}

// spanContext is the context a recording span starts: what trace.ContextWithSpan
// returns, plus the span's start for the handler it is handed to (CallStart, which
// observe's access log and metrics read instead of the clock), in one allocation of 24
// bytes where trace.ContextWithSpan and observe's own call-start context took two of 48.
type spanContext struct {
	context.Context
	s *span
}

// Value answers the OpenTelemetry trace API's key of the current span with the span.
func (c *spanContext) Value(key any) any {
	if key == spanKey {
		return trace.Span(c.s)
	}
	return c.Context.Value(key)
}

// CallStart returns when the span started.
func (c *spanContext) CallStart() time.Time { return c.s.start }

// spanKey is the context key under which the OpenTelemetry trace API keeps the current
// span (trace.ContextWithSpan; the key's type is unexported), learned once by asking
// trace.SpanFromContext through a probe, and checked: nil if either fails, and spans
// then go in contexts through trace.ContextWithSpan.
var spanKey = func() any {
	key := ctxprobe.FirstKey(func(ctx context.Context) { trace.SpanFromContext(ctx) })
	if key == nil {
		return nil
	}
	want := &nonRecordingSpan{}
	if got, _ := trace.ContextWithSpan(context.Background(), want).Value(key).(*nonRecordingSpan); got != want {
		return nil
	}
	return key
}()

// newTraceID returns a random, valid trace id.
func newTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		putUint64(id[:8], rand.Uint64())
		putUint64(id[8:], rand.Uint64())
	}
	return id
}

// newSpanID returns a random, valid span id.
func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		putUint64(id[:], rand.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}
