package outbox

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/observe"
	"github.com/svckit/svckit/pubsub"
)

// RelayTracerProvider makes the relay trace its hops: each event whose stored trace
// context is sampled (see [Outbox.Add]) gets a producer span "relay SUBJECT", a child of
// the event's "publish SUBJECT" span, from the moment the relay hands it to the publisher
// until the publisher has it acknowledged; attributes messaging.system,
// messaging.operation.type=send, messaging.destination.name, messaging.message.id and
// svckit.outbox.relay=true. The event is published with the relay span's context, so the
// consumer's span continues it: the waterfall shows the wait in the outbox (the gap
// between the two spans) and the publish. A failed publish records its error; the relay
// publishes the batch again later, in a new span. Without this option, or with nil, the
// relay makes no spans and the consumer continues the "publish" span.
func RelayTracerProvider(tp trace.TracerProvider) RelayOption {
	return func(r *Relay) { r.tp = tp }
}

// publish publishes msgs with the relay's publisher, in a span per traced event when the
// relay has a tracer provider.
func (r *Relay) publish(ctx context.Context, msgs []*pubsub.Message) error {
	if r.tp == nil {
		return r.pub.Publish(ctx, msgs...)
	}
	tracer := r.tp.Tracer(observe.ScopeName)
	var spans []trace.Span
	for _, m := range msgs {
		if m.Headers["traceparent"] == "" {
			continue
		}
		parent := r.o.prop.Extract(ctx, propagation.MapCarrier(m.Headers))
		if !trace.SpanContextFromContext(parent).IsSampled() {
			continue
		}
		sctx, span := tracer.Start(parent, "relay "+m.Subject,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.destination.name", m.Subject),
				attribute.String("messaging.message.id", m.ID),
				attribute.Bool("svckit.outbox.relay", true),
			))
		if !span.IsRecording() {
			span.End()
			continue
		}
		h := maps.Clone(m.Headers)
		r.o.prop.Inject(sctx, propagation.MapCarrier(h))
		m.Headers = h
		spans = append(spans, span)
	}
	err := r.pub.Publish(ctx, msgs...)
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
	return err
}
