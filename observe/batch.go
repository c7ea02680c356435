package observe

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/svckit/svckit/observe/internal/spanqueue"
)

// BatchOptions configures NewBatchProcessor. Zero fields take the OpenTelemetry defaults.
type BatchOptions struct {
	// ScheduleDelay is the longest a span waits before it is exported: 5 s by default.
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export call: 30 s by default.
	ExportTimeout time.Duration
	// MaxQueueSize is how many ended spans wait at most; spans that end while the queue
	// is full are dropped and counted. 2048 by default.
	MaxQueueSize int
	// MaxExportBatchSize is the most spans passed to one export call; a full batch is
	// exported at once. 512 by default, and never more than MaxQueueSize.
	MaxExportBatchSize int
}

// BatchOptionsFromEnv returns the options that the standard OTEL_BSP_SCHEDULE_DELAY,
// OTEL_BSP_EXPORT_TIMEOUT (both milliseconds), OTEL_BSP_MAX_QUEUE_SIZE and
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE variables set, as read by getenv. An unparsable or
// negative value is an error naming the variable.
func BatchOptionsFromEnv(getenv func(string) string) (BatchOptions, error) {
	var o BatchOptions
	for _, v := range []struct {
		name string
		ms   *time.Duration
		n    *int
	}{
		{name: "OTEL_BSP_SCHEDULE_DELAY", ms: &o.ScheduleDelay},
		{name: "OTEL_BSP_EXPORT_TIMEOUT", ms: &o.ExportTimeout},
		{name: "OTEL_BSP_MAX_QUEUE_SIZE", n: &o.MaxQueueSize},
		{name: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", n: &o.MaxExportBatchSize},
	} {
		s := strings.TrimSpace(getenv(v.name))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return BatchOptions{}, fmt.Errorf("observe: %s %q: want a whole number of %s", v.name, s, map[bool]string{true: "milliseconds", false: "spans"}[v.ms != nil])
		}
		if v.ms != nil {
			*v.ms = time.Duration(n) * time.Millisecond
		} else {
			*v.n = n
		}
	}
	return o, nil
}

// BatchProcessor is a span processor that hands ended, sampled spans to an exporter in
// batches, like the OpenTelemetry SDK's batch span processor and with the same options,
// but cheaper per span: ending a span appends it to a slice under a mutex, and the
// export goroutine is woken only when a batch is full, when the schedule delay has
// passed, or on ForceFlush and Shutdown. The SDK's processor sends every span over a
// channel, which wakes its goroutine once per span; on a server with one or two cores
// that context switch per request is a measurable share of what tracing costs.
//
// Spans that end while the queue is full are dropped (see Dropped), never blocking the
// request that ended them.
type BatchProcessor struct {
	exp sdktrace.SpanExporter
	q   *spanqueue.Queue[sdktrace.ReadOnlySpan]
}

var _ sdktrace.SpanProcessor = (*BatchProcessor)(nil)

// NewBatchProcessor returns a processor that exports through exp, and starts its export
// goroutine; Shutdown stops it.
func NewBatchProcessor(exp sdktrace.SpanExporter, opts BatchOptions) *BatchProcessor {
	return &BatchProcessor{exp: exp, q: spanqueue.New(spanqueue.Options{
		ScheduleDelay:      opts.ScheduleDelay,
		ExportTimeout:      opts.ExportTimeout,
		MaxQueueSize:       opts.MaxQueueSize,
		MaxExportBatchSize: opts.MaxExportBatchSize,
	}, "observe", exp.ExportSpans)}
}

// OnStart does nothing.
func (p *BatchProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s for export if it is sampled.
func (p *BatchProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.q.Stopped() || !s.SpanContext().IsSampled() {
		return
	}
	p.q.Add(s)
}

// Dropped returns how many spans were dropped because the queue was full.
func (p *BatchProcessor) Dropped() int64 { return p.q.Dropped() }

// ForceFlush exports every span queued so far, and returns when they are exported or ctx
// ends. It returns the error of the last failed export since the previous ForceFlush.
func (p *BatchProcessor) ForceFlush(ctx context.Context) error { return p.q.ForceFlush(ctx) }

// Shutdown exports the spans still queued, stops the export goroutine and shuts the
// exporter down. Spans that end afterwards are not exported. It returns when done or
// when ctx ends.
func (p *BatchProcessor) Shutdown(ctx context.Context) error {
	return p.q.Shutdown(ctx, p.exp.Shutdown)
}
