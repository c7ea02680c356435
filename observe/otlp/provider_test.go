package otlp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// testResource is the resource of the comparison tests.
func testResource() *resource.Resource {
	return resource.NewWithAttributes("https://opentelemetry.io/schemas/1.37.0",
		attribute.String("service.name", "greeter"), attribute.String("service.version", "1.0.0"))
}

// Fixed times and contexts for the spans of the comparison tests.
var (
	t0         = time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	remoteSC   = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{0xb1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, Remote: true})
	unsampled  = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xc1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{0xd1, 2, 3, 4, 5, 6, 7, 8}, Remote: true})
	linkedTS   = must(trace.ParseTraceState("vendor=v1,other=o2"))
	linkedSC   = trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xe1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{0xf1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, TraceState: linkedTS})
	errBoom    = errors.New("boom")
	startAt    = trace.WithTimestamp(t0)
	endAt      = trace.WithTimestamp(t0.Add(250 * time.Microsecond))
	remoteCtx  = trace.ContextWithRemoteSpanContext(context.Background(), remoteSC)
	serverKind = trace.WithSpanKind(trace.SpanKindServer)
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// manyAttrs returns n int attributes a0..a(n-1).
func manyAttrs(n int) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, n)
	for i := range kvs {
		kvs[i] = attribute.Int(fmt.Sprintf("a%d", i), i)
	}
	return kvs
}

// taggingSampler samples every span, adding an attribute and a trace state member.
type taggingSampler struct{}

func (taggingSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	ts := trace.SpanContextFromContext(p.ParentContext).TraceState()
	ts, _ = ts.Insert("svckit", "t"+fmt.Sprint(len(p.Attributes)))
	return sdktrace.SamplingResult{
		Decision:   sdktrace.RecordAndSample,
		Attributes: []attribute.KeyValue{attribute.String("sampler.name", p.Name), attribute.Int("sampler.kind", int(p.Kind))},
		Tracestate: ts,
	}
}

func (taggingSampler) Description() string { return "tagging" }

// recordOnly records every span without sampling it.
type recordOnly struct{}

func (recordOnly) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
}

func (recordOnly) Description() string { return "record-only" }

// comparisonCases are the spans the comparison test creates through both providers.
var comparisonCases = []struct {
	name    string
	sampler sdktrace.Sampler // nil: the default
	times   bool             // times are not all given: compare that they are set, not their values
	spans   int              // spans exported
	limits  *sdktrace.SpanLimits
	run     func(tp trace.TracerProvider)
}{
	{name: "server span with RPC attributes", spans: 1, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("github.com/svckit/svckit/observe").Start(remoteCtx, "greeter.Greeter/Hello", serverKind, startAt)
		s.SetAttributes(attribute.String("rpc.system.name", "grpc"), attribute.String("rpc.method", "greeter.Greeter/Hello"))
		s.End(endAt)
	}},
	{name: "failed call", spans: 1, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "greeter.Greeter/Hello", serverKind, startAt)
		s.SetAttributes(attribute.String("rpc.system.name", "grpc"), attribute.String("svckit.error.kind", "internal"))
		s.RecordError(errBoom, trace.WithTimestamp(t0.Add(time.Microsecond)))
		s.SetStatus(codes.Error, "boom")
		s.End(endAt)
	}},
	{name: "nested spans of every kind", spans: 13, run: func(tp trace.TracerProvider) {
		tr := tp.Tracer("svc")
		ctx, root := tr.Start(context.Background(), "root", startAt)
		for i, k := range []trace.SpanKind{trace.SpanKindInternal, trace.SpanKindServer, trace.SpanKindClient, trace.SpanKindProducer, trace.SpanKindConsumer, trace.SpanKindUnspecified} {
			cctx, c := tr.Start(ctx, fmt.Sprintf("child-%d", i), trace.WithSpanKind(k), trace.WithTimestamp(t0.Add(time.Duration(i)*time.Microsecond)))
			_, g := tr.Start(cctx, "grandchild", startAt)
			g.End(endAt)
			c.End(endAt)
		}
		root.End(endAt)
	}},
	{name: "attributes of every type, duplicates, at start and later", spans: 1, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "attrs", startAt, trace.WithAttributes(
			attribute.String("s", "first"), attribute.Bool("b", true), attribute.Int64("i", -7),
		))
		s.SetAttributes(
			attribute.Float64("f", 1.5), attribute.BoolSlice("bs", []bool{true, false}),
			attribute.Int64Slice("is", []int64{1, -2, 3}), attribute.Float64Slice("fs", []float64{0.5, 2}),
			attribute.StringSlice("ss", []string{"x", "", "y"}), attribute.String("s", "last"),
			attribute.KeyValue{}, // invalid: dropped and counted
		)
		s.SetAttributes(attribute.Int64("i", 42), attribute.String("empty", ""),
			attribute.Slice("mixed", attribute.StringValue("a"), attribute.IntValue(1), attribute.SliceValue(attribute.BoolValue(true))),
			attribute.Map("m", attribute.String("k", "v"), attribute.Map("inner", attribute.Float64("x", 0.5))))
		s.End(endAt)
	}},
	{name: "events", spans: 1, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "events", startAt)
		s.AddEvent("cache miss", trace.WithTimestamp(t0.Add(time.Microsecond)), trace.WithAttributes(attribute.String("key", "k1")))
		s.AddEvent("no attributes", trace.WithTimestamp(t0.Add(2*time.Microsecond)))
		s.RecordError(fmt.Errorf("wrapped: %w", errBoom), trace.WithTimestamp(t0.Add(3*time.Microsecond)), trace.WithAttributes(attribute.Int("attempt", 2)))
		s.RecordError(nil)
		s.End(endAt)
	}},
	{name: "links at start and later", spans: 1, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "links", startAt, trace.WithLinks(
			trace.Link{SpanContext: linkedSC, Attributes: []attribute.KeyValue{attribute.String("why", "batch")}},
			trace.Link{}, // empty: ignored
		))
		s.AddLink(trace.Link{SpanContext: remoteSC})
		s.AddLink(trace.Link{Attributes: []attribute.KeyValue{attribute.Bool("orphan", true)}})
		s.End(endAt)
	}},
	{name: "status precedence", spans: 5, run: func(tp trace.TracerProvider) {
		tr := tp.Tracer("svc")
		for i, seq := range [][]codes.Code{{codes.Error, codes.Ok}, {codes.Ok, codes.Error}, {codes.Error, codes.Unset}, {codes.Ok}, {codes.Unset, codes.Error, codes.Error}} {
			_, s := tr.Start(remoteCtx, fmt.Sprintf("status-%d", i), startAt)
			for j, c := range seq {
				s.SetStatus(c, fmt.Sprintf("description %d", j))
			}
			s.End(endAt)
		}
	}},
	{name: "renamed", spans: 1, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "before", startAt)
		s.SetName("after")
		s.End(endAt)
		s.SetName("after end")
	}},
	{name: "limits", spans: 1, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "limits", startAt, trace.WithAttributes(manyAttrs(100)...))
		s.SetAttributes(manyAttrs(130)...) // a0..a99 replaced, a100..a127 added, 2 dropped
		s.SetAttributes(attribute.String("a5", "replaced"), attribute.String("new", "dropped"))
		for i := range 131 {
			s.AddEvent(fmt.Sprintf("e%d", i), trace.WithTimestamp(t0.Add(time.Duration(i))))
		}
		s.AddEvent("big", trace.WithTimestamp(t0), trace.WithAttributes(manyAttrs(130)...))
		for i := range 130 {
			s.AddLink(trace.Link{SpanContext: remoteSC, Attributes: manyAttrs(i % 3)})
		}
		s.AddLink(trace.Link{SpanContext: linkedSC, Attributes: manyAttrs(129)})
		s.End(endAt)
	}},
	{name: "small limits, value length", spans: 1, limits: &sdktrace.SpanLimits{
		AttributeValueLengthLimit: 3, AttributeValueDepthLimit: 64, AttributeCountLimit: 5, EventCountLimit: 2,
		LinkCountLimit: 1, AttributePerEventCountLimit: 1, AttributePerLinkCountLimit: 0,
	}, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "small", startAt, trace.WithAttributes(
			attribute.String("long", "abcdef"), attribute.String("utf8", "héllo"), attribute.String("bad", "a\xffbcd"),
			attribute.StringSlice("ss", []string{"abcd", "ab"}), attribute.String("short", "ab"),
		))
		s.SetAttributes(attribute.String("long", "xyzxyz"), attribute.Int("over", 1))
		s.SetAttributes(attribute.Map("short", attribute.String("k", "abcdef"), attribute.Slice("s", attribute.StringValue("uvwxyz"), attribute.ByteSliceValue([]byte("12345")))))
		for i := range 3 {
			s.AddEvent(fmt.Sprintf("e%d", i), trace.WithTimestamp(t0), trace.WithAttributes(manyAttrs(2)...))
		}
		s.AddLink(trace.Link{SpanContext: remoteSC, Attributes: manyAttrs(2)})
		s.AddLink(trace.Link{SpanContext: linkedSC})
		s.End(endAt)
	}},
	{name: "zero limits", spans: 1, limits: &sdktrace.SpanLimits{AttributeValueLengthLimit: -1, AttributeValueDepthLimit: 64}, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "zero", startAt, trace.WithAttributes(manyAttrs(3)...))
		s.SetAttributes(manyAttrs(2)...)
		s.AddEvent("e", trace.WithTimestamp(t0))
		s.AddLink(trace.Link{SpanContext: remoteSC})
		s.End(endAt)
	}},
	{name: "nested values: duplicate map keys, depth", spans: 1, limits: &sdktrace.SpanLimits{
		AttributeValueLengthLimit: -1, AttributeValueDepthLimit: 2, AttributeCountLimit: 128, EventCountLimit: 128,
		LinkCountLimit: 128, AttributePerEventCountLimit: 128, AttributePerLinkCountLimit: 128,
	}, run: func(tp trace.TracerProvider) {
		dup := attribute.Map("dup", attribute.String("k", "first"), attribute.Int("n", 1), attribute.String("k", "last"))
		deep := attribute.Slice("deep", attribute.SliceValue(attribute.SliceValue(attribute.IntValue(1)), attribute.Int64SliceValue([]int64{1})), attribute.IntValue(2))
		deepMap := attribute.Map("deepmap", attribute.Map("a", attribute.Map("b", attribute.Int("c", 1)), attribute.String("k", "v")))
		_, s := tp.Tracer("svc").Start(remoteCtx, "nested", startAt, trace.WithAttributes(dup, deep))
		s.SetAttributes(deepMap, attribute.Int64Slice("flat", []int64{1, 2}))
		s.AddEvent("e", trace.WithTimestamp(t0), trace.WithAttributes(dup, deep, deepMap))
		s.AddLink(trace.Link{SpanContext: linkedSC, Attributes: []attribute.KeyValue{dup, deep}})
		s.End(endAt)
	}},
	{name: "depth 1", spans: 1, limits: &sdktrace.SpanLimits{
		AttributeValueLengthLimit: -1, AttributeValueDepthLimit: 1, AttributeCountLimit: 128, EventCountLimit: 128,
		LinkCountLimit: 128, AttributePerEventCountLimit: 128, AttributePerLinkCountLimit: 128,
	}, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "depth1", startAt, trace.WithAttributes(
			attribute.Int64Slice("flat", []int64{1}), attribute.Slice("s", attribute.IntValue(1), attribute.SliceValue(attribute.IntValue(2))),
			attribute.Map("m", attribute.Int("a", 1), attribute.Map("b", attribute.Int("c", 1))), attribute.String("x", "y")))
		s.AddEvent("e", trace.WithTimestamp(t0), trace.WithAttributes(attribute.Int64Slice("flat", []int64{1}), attribute.Slice("s", attribute.Int64SliceValue([]int64{3})), attribute.String("x", "y")))
		s.End(endAt)
	}},
	{name: "depth 0 is the default", spans: 1, limits: &sdktrace.SpanLimits{
		AttributeValueLengthLimit: -1, AttributeValueDepthLimit: 0, AttributeCountLimit: 128, EventCountLimit: 128,
		LinkCountLimit: 128, AttributePerEventCountLimit: 128, AttributePerLinkCountLimit: 128,
	}, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "depth0", startAt, trace.WithAttributes(
			attribute.Int64Slice("flat", []int64{1}), attribute.Slice("s", attribute.IntValue(1)), attribute.Map("m", attribute.Int("a", 1))))
		s.End(endAt)
	}},
	{name: "scopes", spans: 6, run: func(tp trace.TracerProvider) {
		a := tp.Tracer("scope.a", trace.WithInstrumentationVersion("v1.2.3"), trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"),
			trace.WithInstrumentationAttributes(attribute.String("lib", "a")))
		b := tp.Tracer("")
		for i := range 3 {
			_, s := a.Start(remoteCtx, fmt.Sprintf("a%d", i), startAt)
			s.End(endAt)
			_, s = b.Start(remoteCtx, fmt.Sprintf("b%d", i), startAt)
			s.End(endAt)
		}
	}},
	{name: "sampler attributes and trace state", spans: 1, sampler: taggingSampler{}, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "tagged", startAt, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attribute.Int("x", 1)))
		s.End(endAt)
	}},
	{name: "parent-based: unsampled remote parent, new root", spans: 1, run: func(tp trace.TracerProvider) {
		tr := tp.Tracer("svc")
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), unsampled)
		_, s := tr.Start(ctx, "not sampled", startAt)
		s.End(endAt)
		_, s = tr.Start(ctx, "new root", startAt, trace.WithNewRoot())
		s.End(endAt)
	}},
	{name: "ratio sampler", spans: 0, sampler: sdktrace.TraceIDRatioBased(0), run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(context.Background(), "never", startAt)
		s.End(endAt)
		_, s = tp.Tracer("svc").Start(remoteCtx, "ratio ignores the parent", startAt)
		s.End(endAt)
	}},
	{name: "always on, unsampled parent", spans: 1, sampler: sdktrace.AlwaysSample(), run: func(tp trace.TracerProvider) {
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), unsampled)
		_, s := tp.Tracer("svc").Start(ctx, "sampled anyway", startAt)
		s.End(endAt)
	}},
	{name: "record only", spans: 0, sampler: recordOnly{}, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "recorded, not sampled", startAt)
		s.End(endAt)
	}},
	{name: "StartSpan: kinds, attributes, a child", spans: 3, times: true, run: func(tp trace.TracerProvider) {
		tr := tp.Tracer("github.com/svckit/svckit/observe")
		rpc := []attribute.KeyValue{attribute.String("rpc.system.name", "grpc"), attribute.String("rpc.method", "a.B/C")}
		ctx, s := startSpan(tr, remoteCtx, "a.B/C", trace.SpanKindServer, rpc)
		_, c := startSpan(tr, ctx, "d.E/F", trace.SpanKindClient, rpc[:1])
		c.SetAttributes(attribute.Int("later", 1))
		c.End()
		s.End()
		_, r := startSpan(tr, context.Background(), "root", trace.SpanKindUnspecified, nil)
		r.End()
	}},
	{name: "StartSpan: sampler attributes first", spans: 1, times: true, sampler: taggingSampler{}, run: func(tp trace.TracerProvider) {
		_, s := startSpan(tp.Tracer("svc"), remoteCtx, "tagged", trace.SpanKindClient, []attribute.KeyValue{attribute.Int("x", 1)})
		s.End()
	}},
	{name: "StartSpan: not sampled", spans: 0, times: true, sampler: sdktrace.NeverSample(), run: func(tp trace.TracerProvider) {
		_, s := startSpan(tp.Tracer("svc"), remoteCtx, "never", trace.SpanKindServer, []attribute.KeyValue{attribute.Int("x", 1)})
		if s.IsRecording() || !s.SpanContext().IsValid() {
			panic("an unsampled span must not record and must have a valid span context")
		}
		s.End()
	}},
	{name: "times from the clock, panic at End", spans: 1, times: true, run: func(tp trace.TracerProvider) {
		_, s := tp.Tracer("svc").Start(remoteCtx, "clock")
		s.AddEvent("now")
		s.RecordError(errBoom)
		s.RecordError(fmt.Errorf("wrapped: %w", errBoom))
		s.RecordError(errBoom, trace.WithStackTrace(true))
		func() {
			defer func() { _ = recover() }()
			defer s.End(trace.WithStackTrace(true))
			panic("oops")
		}()
	}},
}

// TestMatchesSDK creates the same spans through the OpenTelemetry SDK (with this
// package's Exporter) and through TracerProvider, receives both exports on a loopback
// collector, and compares the decoded requests field by field, with the random trace and
// span ids replaced by their order of appearance.
func TestMatchesSDK(t *testing.T) {
	clearEnv(t)
	for _, tc := range comparisonCases {
		t.Run(tc.name, func(t *testing.T) {
			sampler := tc.sampler
			if sampler == nil {
				sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
			}
			want := exportThrough(t, tc.run, func(exp *Exporter) flusher {
				opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(testResource()), sdktrace.WithSampler(sampler),
					sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Hour))}
				if tc.limits != nil {
					opts = append(opts, sdktrace.WithRawSpanLimits(*tc.limits))
				}
				return sdktrace.NewTracerProvider(opts...)
			})
			got := exportThrough(t, tc.run, func(exp *Exporter) flusher {
				return NewTracerProvider(exp, ProviderOptions{Resource: testResource(), Sampler: sampler, ScheduleDelay: time.Hour, SpanLimits: tc.limits})
			})
			// The same spans with their start attributes referred to, not copied, as
			// observe.Tracing's are (StartSpanShared).
			shared := exportThrough(t, tc.run, func(exp *Exporter) flusher {
				return sharedProvider{NewTracerProvider(exp, ProviderOptions{Resource: testResource(), Sampler: sampler, ScheduleDelay: time.Hour, SpanLimits: tc.limits})}
			})
			canonicalize(t, want, tc.times)
			canonicalize(t, got, tc.times)
			canonicalize(t, shared, tc.times)
			requireEqual(t, want, got)
			requireEqual(t, want, shared)
			n := 0
			for _, rs := range want.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					n += len(ss.Spans)
				}
			}
			if n != tc.spans {
				t.Errorf("the SDK exported %d spans, want %d", n, tc.spans)
			}
		})
	}
}

// sharedProvider is a TracerProvider whose tracers' StartSpan is StartSpanShared.
type sharedProvider struct{ *TracerProvider }

func (p sharedProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return sharedTracer{p.TracerProvider.Tracer(name, opts...).(*tracer)}
}

type sharedTracer struct{ *tracer }

func (t sharedTracer) StartSpan(ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue) (context.Context, trace.Span) {
	return t.StartSpanShared(ctx, name, kind, attrs)
}

// TestSharedAttributesUntouched starts spans concurrently with one shared attribute
// slice, as observe.Tracing does for an endpoint, and changes their attributes every way
// a span allows (a new key, a shared key's value, beyond the count limit, duplicates):
// the shared slice stays as it was (and the race detector sees no write to it), and each
// span exports its own attributes.
func TestSharedAttributesUntouched(t *testing.T) {
	tp, c := newLean(t, ProviderOptions{ScheduleDelay: time.Hour, SpanLimits: &sdktrace.SpanLimits{
		AttributeCountLimit: 4, AttributeValueLengthLimit: -1, EventCountLimit: 8, LinkCountLimit: 8,
		AttributePerEventCountLimit: 8, AttributePerLinkCountLimit: 8, AttributeValueDepthLimit: 8}})
	tr := tp.Tracer("shared").(*tracer)
	attrs := []attribute.KeyValue{attribute.String("a", "1"), attribute.String("b", "2"), attribute.String("c", "3")}
	dups := []attribute.KeyValue{attribute.String("a", "1"), attribute.String("b", "2"), attribute.String("a", "3")}
	orig, origDups := slices.Clone(attrs), slices.Clone(dups)
	var wg sync.WaitGroup
	for i := range 80 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i >= 64 {
				_, s := tr.StartSpanShared(context.Background(), "op", trace.SpanKindServer, dups)
				s.End()
				return
			}
			_, s := tr.StartSpanShared(context.Background(), "op", trace.SpanKindServer, attrs)
			switch i % 4 {
			case 1:
				s.SetAttributes(attribute.String("b", "changed"))
			case 2:
				s.SetAttributes(attribute.String("d", "4"), attribute.String("e", "dropped"))
			case 3:
				s.SetAttributes(attribute.String("a", "x"), attribute.String("a", "y"))
			}
			s.End()
		}()
	}
	wg.Wait()
	if !slices.Equal(attrs, orig) || !slices.Equal(dups, origDups) {
		t.Fatalf("shared attributes changed: %v and %v, want %v and %v", attrs, dups, orig, origDups)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range c.got() {
		for _, rs := range decode(t, r.body).ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					var kv []string
					for _, a := range sp.Attributes {
						kv = append(kv, a.Key+"="+a.Value.GetStringValue())
					}
					seen[strings.Join(kv, ",")+fmt.Sprintf(" dropped=%d", sp.DroppedAttributesCount)]++
				}
			}
		}
	}
	want := map[string]int{
		"a=1,b=2,c=3 dropped=0":       16,
		"a=1,b=changed,c=3 dropped=0": 16,
		"a=1,b=2,c=3,d=4 dropped=1":   16,
		"a=y,b=2,c=3 dropped=0":       16,
		"a=3,b=2 dropped=0":           16,
	}
	if !maps.Equal(seen, want) {
		t.Errorf("exported %v, want %v", seen, want)
	}
}

// flusher is a tracer provider that can be flushed.
type flusher interface {
	trace.TracerProvider
	ForceFlush(context.Context) error
	Shutdown(context.Context) error
}

// exportThrough runs spans on the provider newTP makes over an exporter to a loopback
// collector, flushes it and returns the one request the collector received (an empty
// request if it received none).
func exportThrough(t *testing.T, spans func(trace.TracerProvider), newTP func(*Exporter) flusher) *coltracepb.ExportTraceServiceRequest {
	t.Helper()
	c := newCollector(t, nil)
	tp := newTP(newTestExporter(t, WithEndpointURL(c.URL+"/v1/traces")))
	spans(tp)
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := c.got()
	switch len(reqs) {
	case 0:
		return &coltracepb.ExportTraceServiceRequest{}
	case 1:
		return decode(t, reqs[0].body)
	}
	t.Fatalf("collector received %d requests, want 1", len(reqs))
	return nil
}

// canonicalize replaces the random ids of req by their order of appearance; with times,
// it checks that span and event times are set and in order and zeroes them, and replaces
// stack traces with a marker.
func canonicalize(t *testing.T, req *coltracepb.ExportTraceServiceRequest, times bool) {
	t.Helper()
	traces, spans := map[string]byte{}, map[string]byte{}
	id := func(m map[string]byte, b []byte) []byte {
		if len(b) == 0 {
			return b
		}
		n, ok := m[string(b)]
		if !ok {
			n = byte(len(m) + 1)
			m[string(b)] = n
		}
		out := make([]byte, len(b))
		out[len(out)-1] = n
		return out
	}
	stacks := func(kvs []*commonpb.KeyValue) {
		for _, kv := range kvs {
			if kv.Key == "exception.stacktrace" {
				if s := kv.Value.GetStringValue(); !strings.HasPrefix(s, "goroutine ") {
					t.Errorf("exception.stacktrace = %.60q, want a goroutine stack", s)
				}
				kv.Value = &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "<stack>"}}
			}
		}
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				s.TraceId, s.SpanId, s.ParentSpanId = id(traces, s.TraceId), id(spans, s.SpanId), id(spans, s.ParentSpanId)
				for _, l := range s.Links {
					l.TraceId, l.SpanId = id(traces, l.TraceId), id(spans, l.SpanId)
				}
				for _, e := range s.Events {
					stacks(e.Attributes)
				}
				if !times {
					continue
				}
				if s.StartTimeUnixNano == 0 || s.EndTimeUnixNano < s.StartTimeUnixNano {
					t.Errorf("span %q: start %d, end %d", s.Name, s.StartTimeUnixNano, s.EndTimeUnixNano)
				}
				s.StartTimeUnixNano, s.EndTimeUnixNano = 0, 0
				for _, e := range s.Events {
					if e.TimeUnixNano == 0 {
						t.Errorf("span %q: event %q has no time", s.Name, e.Name)
					}
					e.TimeUnixNano = 0
				}
			}
		}
	}
}

// newLean returns a TracerProvider exporting to a new loopback collector, shut down at
// the end of the test.
func newLean(t *testing.T, opts ProviderOptions) (*TracerProvider, *collector) {
	t.Helper()
	clearEnv(t)
	c := newCollector(t, nil)
	tp := NewTracerProvider(newTestExporter(t, WithEndpointURL(c.URL+"/v1/traces")), opts)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, c
}

// exportedSpans returns the number of spans in the requests c received.
func exportedSpans(t *testing.T, c *collector) int {
	t.Helper()
	n := 0
	for _, r := range c.got() {
		for _, rs := range decode(t, r.body).ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				n += len(ss.Spans)
			}
		}
	}
	return n
}

func TestSpanAfterEnd(t *testing.T) {
	tp, c := newLean(t, ProviderOptions{ScheduleDelay: time.Hour})
	ctx, s := tp.Tracer("svc").Start(remoteCtx, "once", startAt)
	sc := s.SpanContext()
	s.End(endAt)
	if s.IsRecording() {
		t.Error("IsRecording after End")
	}
	s.SetAttributes(attribute.String("late", "x"))
	s.AddEvent("late")
	s.AddLink(trace.Link{SpanContext: linkedSC})
	s.RecordError(errBoom)
	s.SetStatus(codes.Error, "late")
	s.SetName("late")
	s.End()
	if got := s.SpanContext(); !got.Equal(sc) || !sc.IsValid() || sc.TraceID() != remoteSC.TraceID() {
		t.Errorf("SpanContext after End = %v, want %v in trace %v", got, sc, remoteSC.TraceID())
	}
	if got := trace.SpanContextFromContext(ctx); !got.Equal(sc) {
		t.Errorf("context holds %v, want %v", got, sc)
	}
	if s.TracerProvider() != tp {
		t.Error("TracerProvider is not the provider that made the span")
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := c.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	sp := decode(t, reqs[0].body).ResourceSpans[0].ScopeSpans[0].Spans
	if len(sp) != 1 || sp[0].Name != "once" || len(sp[0].Attributes) != 0 || len(sp[0].Events) != 0 || len(sp[0].Links) != 0 || sp[0].Status.GetCode() != 0 {
		t.Errorf("exported %v, want the span as it ended", sp)
	}
}

func TestNonRecordingSpan(t *testing.T) {
	tp, c := newLean(t, ProviderOptions{Sampler: sdktrace.NeverSample(), ScheduleDelay: time.Hour})
	for _, ctx := range []context.Context{context.Background(), remoteCtx} {
		ctx2, s := tp.Tracer("svc").Start(ctx, "unsampled")
		sc := s.SpanContext()
		if s.IsRecording() || !sc.IsValid() || sc.IsSampled() {
			t.Errorf("recording %v, span context %v: want a valid, unsampled, non-recording span", s.IsRecording(), sc)
		}
		if p := trace.SpanContextFromContext(ctx); p.IsValid() && (sc.TraceID() != p.TraceID() || sc.SpanID() == p.SpanID()) {
			t.Errorf("span context %v is not a child of %v", sc, p)
		}
		if !trace.SpanContextFromContext(ctx2).Equal(sc) {
			t.Error("the context does not hold the span")
		}
		s.SetAttributes(attribute.Int("x", 1))
		s.AddEvent("e")
		s.End()
		if s.TracerProvider() != tp {
			t.Error("TracerProvider is not the provider that made the span")
		}
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := exportedSpans(t, c); n != 0 {
		t.Errorf("exported %d spans, want 0", n)
	}
}

// TestConcurrentSpans uses spans and the provider from many goroutines at once (run
// with -race), including one span shared by all and ForceFlush racing with End.
func TestConcurrentSpans(t *testing.T) {
	tp, c := newLean(t, ProviderOptions{ScheduleDelay: time.Millisecond, MaxExportBatchSize: 7, MaxQueueSize: 10000})
	_, shared := tp.Tracer("shared").Start(remoteCtx, "shared")
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			tr := tp.Tracer(fmt.Sprintf("scope-%d", w%3))
			for i := range each {
				ctx, s := tr.Start(remoteCtx, "op")
				_, child := tr.Start(ctx, "child")
				s.SetAttributes(attribute.Int("i", i))
				shared.SetAttributes(attribute.Int(fmt.Sprintf("w%d", w), i))
				shared.AddEvent("tick")
				child.End()
				s.End()
				if i%50 == 0 {
					_ = tp.ForceFlush(context.Background())
				}
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = shared.IsRecording()
			_ = shared.SpanContext()
		}
	})
	wg.Wait()
	shared.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := exportedSpans(t, c), 2*workers*each+1; got != want || tp.Dropped() != 0 {
		t.Errorf("exported %d spans, dropped %d; want %d, 0", got, tp.Dropped(), want)
	}
}

func TestQueueFullDrops(t *testing.T) {
	block := make(chan struct{})
	c := newCollector(t, func(w http.ResponseWriter, r *http.Request, n int) { <-block })
	clearEnv(t)
	tp := NewTracerProvider(newTestExporter(t, WithEndpointURL(c.URL+"/v1/traces")),
		ProviderOptions{ScheduleDelay: time.Hour, MaxQueueSize: 4, MaxExportBatchSize: 2})
	tr := tp.Tracer("svc")
	end := func(n int) {
		for range n {
			_, s := tr.Start(remoteCtx, "s")
			s.End()
		}
	}
	end(2) // a full batch: exported at once, and the collector holds it
	waitFor(t, func() bool { return len(c.got()) == 1 })
	done := make(chan struct{})
	go func() { // must not block although the export is stuck
		end(10)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("End blocked on a full queue")
	}
	if got := tp.Dropped(); got != 6 {
		t.Errorf("Dropped = %d, want 6 (4 queued)", got)
	}
	close(block)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := exportedSpans(t, c); n != 6 {
		t.Errorf("exported %d spans, want 6", n)
	}
}

func TestShutdownFlushes(t *testing.T) {
	tp, c := newLean(t, ProviderOptions{ScheduleDelay: time.Hour})
	tr := tp.Tracer("svc")
	for range 5 {
		_, s := tr.Start(remoteCtx, "s")
		s.End()
	}
	_, open := tr.Start(remoteCtx, "open at shutdown")
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := exportedSpans(t, c); n != 5 {
		t.Errorf("exported %d spans at shutdown, want 5", n)
	}
	open.End() // after Shutdown: not exported, no panic
	_, s := tp.Tracer("svc").Start(remoteCtx, "after")
	if s.IsRecording() {
		t.Error("a tracer after Shutdown records")
	}
	s.End()
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Errorf("ForceFlush after Shutdown: %v", err)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if n := exportedSpans(t, c); n != 5 {
		t.Errorf("exported %d spans in all, want 5", n)
	}
}

func TestScheduleDelayExports(t *testing.T) {
	tp, c := newLean(t, ProviderOptions{ScheduleDelay: 20 * time.Millisecond})
	_, s := tp.Tracer("svc").Start(remoteCtx, "s")
	s.End()
	waitFor(t, func() bool { return len(c.got()) == 1 })
}

func TestExportErrorReported(t *testing.T) {
	c := newCollector(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, "no", http.StatusBadRequest)
	})
	clearEnv(t)
	tp := NewTracerProvider(newTestExporter(t, WithEndpointURL(c.URL+"/v1/traces")), ProviderOptions{ScheduleDelay: time.Hour})
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, s := tp.Tracer("svc").Start(remoteCtx, "s")
	s.End()
	err := tp.ForceFlush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("ForceFlush = %v, want the collector's 400", err)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Errorf("second ForceFlush = %v, want nil (the error was reported)", err)
	}
}

func TestTracerPerScope(t *testing.T) {
	tp, _ := newLean(t, ProviderOptions{})
	if tp.Tracer("a") != tp.Tracer("a") {
		t.Error("the same scope gave two tracers")
	}
	if tp.Tracer("a") == tp.Tracer("a", trace.WithInstrumentationVersion("v2")) {
		t.Error("two scopes gave one tracer")
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFastSamplers(t *testing.T) {
	for _, tt := range []struct {
		sampler sdktrace.Sampler
		want    fastSampler
	}{
		{nil, parentBasedAlwaysOn},
		{sdktrace.AlwaysSample(), alwaysOn},
		{sdktrace.ParentBased(sdktrace.AlwaysSample()), parentBasedAlwaysOn},
		{sdktrace.ParentBased(sdktrace.AlwaysSample(), sdktrace.WithRemoteParentNotSampled(sdktrace.AlwaysSample())), otherSampler},
		{sdktrace.ParentBased(sdktrace.NeverSample()), otherSampler},
		{sdktrace.TraceIDRatioBased(1), otherSampler},
		{taggingSampler{}, otherSampler},
	} {
		tp, _ := newLean(t, ProviderOptions{Sampler: tt.sampler})
		if tp.fastSampler != tt.want {
			t.Errorf("%v: fast sampler %d, want %d", tt.sampler, tp.fastSampler, tt.want)
		}
	}
}

// startSpan starts a span as observe.Tracing does: with the lean tracer's StartSpan when
// it has it, else with Start and the attributes set right after it.
func startSpan(tr trace.Tracer, ctx context.Context, name string, kind trace.SpanKind, attrs []attribute.KeyValue) (context.Context, trace.Span) {
	if st, ok := tr.(interface {
		StartSpan(context.Context, string, trace.SpanKind, []attribute.KeyValue) (context.Context, trace.Span)
	}); ok {
		return st.StartSpan(ctx, name, kind, attrs)
	}
	ctx, s := tr.Start(ctx, name, trace.WithSpanKind(kind))
	if len(attrs) > 0 && s.IsRecording() {
		s.SetAttributes(attrs...)
	}
	return ctx, s
}

// TestSpanSize keeps a recorded span in the 224-byte allocation size class: every sampled
// call allocates one, and the next class is 240 bytes. (It was 352 while it held two
// attributes inline; StartSpanShared refers to the caller's instead.)
func TestSpanSize(t *testing.T) {
	if n := unsafe.Sizeof(span{}); n > 224 {
		t.Errorf("span is %d bytes, want at most 224", n)
	}
}

// TestSpanInContext: the context a recording span starts answers the trace API as
// trace.ContextWithSpan's does, also through contexts derived from it, carries the span's
// start, and costs one allocation besides the span.
func TestSpanInContext(t *testing.T) {
	if spanKey == nil {
		t.Fatal("the trace API's context key was not learned: spans go in contexts through trace.ContextWithSpan, one allocation more")
	}
	tp, _ := newLean(t, ProviderOptions{ScheduleDelay: time.Hour})
	tr := tp.Tracer("ctx").(*tracer)
	attrs := []attribute.KeyValue{attribute.String("a", "1")}
	ctx, s := tr.StartSpanShared(context.Background(), "op", trace.SpanKindServer, attrs)
	derived := context.WithValue(ctx, otherKey{}, 1)
	for _, c := range []context.Context{ctx, derived} {
		if got := trace.SpanFromContext(c); got != s {
			t.Errorf("SpanFromContext = %v, want the span", got)
		}
		if got := trace.SpanContextFromContext(c); !got.Equal(s.SpanContext()) {
			t.Errorf("SpanContextFromContext = %v, want %v", got, s.SpanContext())
		}
	}
	cs, ok := ctx.(interface{ CallStart() time.Time })
	if !ok || !cs.CallStart().Equal(s.(*span).StartTime()) {
		t.Errorf("the span's context does not carry its start")
	}
	_, child := tr.Start(derived, "child")
	if got := child.(*span).psid; got != s.SpanContext().SpanID() {
		t.Errorf("child's parent %v, want %v", got, s.SpanContext().SpanID())
	}
	s.End()
	child.End()
	if n := testing.AllocsPerRun(100, func() {
		_, s := tr.StartSpanShared(context.Background(), "op", trace.SpanKindServer, attrs)
		s.End()
	}); n > 2.1 {
		t.Errorf("%.1f allocations per started and ended span, want 2 (the span and its context)", n)
	}
}

type otherKey struct{}
