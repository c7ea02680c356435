package grpc

import (
	"context"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/svckit/svckit/transport/meta"
)

// TestOutgoingMDMatchesPropagator checks that the default path of outgoingMD (no
// propagator: traceparent, tracestate and baggage written directly) sends the same
// metadata as the default OpenTelemetry propagator does through a carrier, that a call
// carries its context's request id and none outside a request, and that headers set with
// meta.WithOutgoingHeader replace the others.
func TestOutgoingMDMatchesPropagator(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.Parse("user=alice;ttl=30") // one member: String orders several at random
	if err != nil {
		t.Fatal(err)
	}
	span := func(flags trace.TraceFlags, state trace.TraceState) func(context.Context) context.Context {
		return func(ctx context.Context) context.Context {
			return trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
				TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: state,
			}))
		}
	}
	tests := []struct {
		name string
		ctx  []func(context.Context) context.Context
		want map[string]string // exactly what is sent: no x-request-id unless ctx has one
	}{
		{"nothing", nil, map[string]string{}},
		{"sampled span", []func(context.Context) context.Context{span(trace.FlagsSampled, trace.TraceState{})},
			map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{"unsampled span", []func(context.Context) context.Context{span(0, trace.TraceState{})},
			map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}},
		{"random flag kept, others dropped", []func(context.Context) context.Context{span(trace.FlagsSampled|trace.FlagsRandom|0x80, trace.TraceState{})},
			map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"}},
		{"trace state", []func(context.Context) context.Context{span(trace.FlagsSampled, ts)},
			map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}},
		{"baggage without a span", []func(context.Context) context.Context{
			func(ctx context.Context) context.Context { return baggage.ContextWithBaggage(ctx, bag) },
		}, map[string]string{"baggage": bag.String()}},
		{"request id", []func(context.Context) context.Context{
			func(ctx context.Context) context.Context { return meta.WithRequestID(ctx, "req-1") },
			span(trace.FlagsSampled, trace.TraceState{}),
		}, map[string]string{"x-request-id": "req-1", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
		{"outgoing headers replace", []func(context.Context) context.Context{
			span(trace.FlagsSampled, trace.TraceState{}),
			func(ctx context.Context) context.Context {
				return meta.WithOutgoingHeader(ctx, "Authorization", "Bearer a")
			},
			func(ctx context.Context) context.Context { return meta.WithOutgoingHeader(ctx, "TraceParent", "mine") },
			func(ctx context.Context) context.Context {
				return meta.WithOutgoingHeader(ctx, "X-Request-Id", "theirs")
			},
			func(ctx context.Context) context.Context {
				return meta.WithOutgoingHeader(ctx, "authorization", "Bearer b")
			},
		}, map[string]string{"authorization": "Bearer b", "traceparent": "mine", "x-request-id": "theirs"}},
		{"more pairs than the stack buffer", func() []func(context.Context) context.Context {
			var fs []func(context.Context) context.Context
			for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
				fs = append(fs, func(ctx context.Context) context.Context { return meta.WithOutgoingHeader(ctx, "X-"+k, k) })
			}
			return fs
		}(), map[string]string{"x-a": "a", "x-b": "b", "x-c": "c", "x-d": "d", "x-e": "e", "x-f": "f", "x-g": "g", "x-h": "h", "x-i": "i", "x-j": "j"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			for _, f := range tt.ctx {
				ctx = f(ctx)
			}
			fast := outgoingPairsOf(t, outgoingMD(ctx, nil))
			slow := outgoingPairsOf(t, outgoingMD(ctx, defaultPropagator()))
			if !mapsEqual(fast, tt.want) {
				t.Errorf("default path sent %v, want %v", fast, tt.want)
			}
			if !mapsEqual(slow, fast) {
				t.Errorf("propagator sent %v, default path %v", slow, fast)
			}
		})
	}
}

// outgoingPairsOf returns the outgoing metadata of ctx, failing on a key sent twice.
func outgoingPairsOf(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	md, _ := metadata.FromOutgoingContext(ctx)
	got := map[string]string{}
	for k, v := range md {
		if len(v) != 1 {
			t.Errorf("key %q sent %d times: %v", k, len(v), v)
		}
		got[k] = v[0]
	}
	return got
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v, ok := b[k]; !ok || v != a[k] {
			return false
		}
	}
	return true
}

// TestOutgoingMDAllocations checks that the default path allocates only what grpc-go's
// metadata.AppendToOutgoingContext and the header values need.
func TestOutgoingMDAllocations(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(meta.WithRequestID(context.Background(), "req-1"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	n := testing.AllocsPerRun(1000, func() { _ = outgoingMD(ctx, nil) })
	// traceparent; AppendToOutgoingContext: its added slice, the pairs' copy, the rawMD
	// boxed and the context.
	if n > 5 {
		t.Errorf("outgoingMD: %v allocations per call, want at most 5", n)
	}
}
