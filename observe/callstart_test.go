package observe

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/endpoint"
	"github.com/svckit/svckit/observe/otlp/otlptest"
)

type otherKey struct{}

// TestCallStart checks that the handler directly inside Tracing gets the call's start
// from the span of the lean provider, and that every other context — wrapped by another
// middleware, from the SDK, with an unsampled span — makes callStartOr read the clock.
func TestCallStart(t *testing.T) {
	otlptest.Discard(t)
	lean := func(s sdktrace.Sampler) *TracerProvider {
		tp, err := NewTracerProvider(context.Background(), TracingOptions{Service: "cs", Sampler: s})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		if tp.Lean() == nil {
			t.Fatal("not the lean provider")
		}
		return tp
	}
	sdk, err := NewTracerProvider(context.Background(), TracingOptions{Service: "cs", Exporter: tracetest.NewInMemoryExporter()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	wrap := func(info endpoint.Info, next endpoint.Handler) endpoint.Handler {
		return func(ctx context.Context, req any) (any, error) {
			return next(context.WithValue(ctx, otherKey{}, 1), req)
		}
	}
	for _, tc := range []struct {
		name     string
		tp       trace.TracerProvider
		mws      []endpoint.Middleware
		fromSpan bool
	}{
		{"lean, sampled", lean(sdktrace.AlwaysSample()), nil, true},
		{"lean, another middleware between", lean(sdktrace.AlwaysSample()), []endpoint.Middleware{wrap}, false},
		{"lean, not sampled", lean(sdktrace.NeverSample()), nil, false},
		{"SDK", sdk, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, spanStart time.Time
			var isCallStart bool
			h := func(ctx context.Context, _ any) (any, error) {
				before := time.Now()
				got = callStartOr(ctx)
				_, isCallStart = ctx.(callStarter)
				if st, ok := trace.SpanFromContext(ctx).(startTimer); ok {
					spanStart = st.StartTime()
				}
				if !isCallStart && got.Before(before) {
					t.Errorf("callStartOr without a call start returned %v, before now (%v)", got, before)
				}
				return nil, nil
			}
			mws := append([]endpoint.Middleware{Tracing(tc.tp)}, tc.mws...)
			info := endpoint.Info{Service: "cs", Method: "M", Transport: "grpc"}
			if _, err := endpoint.Chain(mws...)(info, h)(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			if isCallStart != tc.fromSpan {
				t.Fatalf("the handler's context carries a call start: %v, want %v", isCallStart, tc.fromSpan)
			}
			if tc.fromSpan && !got.Equal(spanStart) {
				t.Fatalf("call start %v, want the span's start %v", got, spanStart)
			}
		})
	}
}
