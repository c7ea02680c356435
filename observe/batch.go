package observe

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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
	exp     sdktrace.SpanExporter
	opts    BatchOptions
	mu      sync.Mutex
	queue   []sdktrace.ReadOnlySpan
	spare   []sdktrace.ReadOnlySpan // the previous batch's slice, reused
	kick    chan struct{}           // capacity 1: a full batch is waiting
	flush   chan chan struct{}      // ForceFlush requests
	stop    chan struct{}           // closed by Shutdown
	done    chan struct{}           // closed when the export goroutine has exported the rest
	stopped atomic.Bool
	dropped atomic.Int64
	errMu   sync.Mutex
	lastErr error
	once    sync.Once
}

var _ sdktrace.SpanProcessor = (*BatchProcessor)(nil)

// NewBatchProcessor returns a processor that exports through exp, and starts its export
// goroutine; Shutdown stops it.
func NewBatchProcessor(exp sdktrace.SpanExporter, opts BatchOptions) *BatchProcessor {
	if opts.ScheduleDelay <= 0 {
		opts.ScheduleDelay = 5 * time.Second
	}
	if opts.ExportTimeout <= 0 {
		opts.ExportTimeout = 30 * time.Second
	}
	if opts.MaxQueueSize <= 0 {
		opts.MaxQueueSize = 2048
	}
	if opts.MaxExportBatchSize <= 0 {
		opts.MaxExportBatchSize = 512
	}
	opts.MaxExportBatchSize = min(opts.MaxExportBatchSize, opts.MaxQueueSize)
	p := &BatchProcessor{
		exp:   exp,
		opts:  opts,
		queue: make([]sdktrace.ReadOnlySpan, 0, opts.MaxExportBatchSize),
		kick:  make(chan struct{}, 1),
		flush: make(chan chan struct{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go p.loop()
	return p
}

// OnStart does nothing.
func (p *BatchProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s for export if it is sampled.
func (p *BatchProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.stopped.Load() || !s.SpanContext().IsSampled() {
		return
	}
	p.mu.Lock()
	if len(p.queue) >= p.opts.MaxQueueSize {
		p.mu.Unlock()
		p.dropped.Add(1)
		return
	}
	p.queue = append(p.queue, s)
	full := len(p.queue) == p.opts.MaxExportBatchSize
	p.mu.Unlock()
	if full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// Dropped returns how many spans were dropped because the queue was full.
func (p *BatchProcessor) Dropped() int64 { return p.dropped.Load() }

// ForceFlush exports every span queued so far, and returns when they are exported or ctx
// ends. It returns the error of the last failed export since the previous ForceFlush.
func (p *BatchProcessor) ForceFlush(ctx context.Context) error {
	if p.stopped.Load() {
		return nil
	}
	ack := make(chan struct{})
	select {
	case p.flush <- ack:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return p.takeErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports the spans still queued, stops the export goroutine and shuts the
// exporter down. Spans that end afterwards are not exported. It returns when done or
// when ctx ends.
func (p *BatchProcessor) Shutdown(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.stopped.Store(true)
		close(p.stop)
		select {
		case <-p.done:
		case <-ctx.Done():
			err = ctx.Err()
			return
		}
		err = errors.Join(p.takeErr(), p.exp.Shutdown(ctx))
	})
	return err
}

// loop is the export goroutine.
func (p *BatchProcessor) loop() {
	defer close(p.done)
	timer := time.NewTimer(p.opts.ScheduleDelay)
	defer timer.Stop()
	for {
		select {
		case <-p.kick:
			p.export(false)
		case <-timer.C:
			p.export(true)
		case ack := <-p.flush:
			p.export(true)
			close(ack)
		case <-p.stop:
			p.export(true)
			return
		}
		timer.Reset(p.opts.ScheduleDelay)
	}
}

// export exports full batches, and with all also the last partial one.
func (p *BatchProcessor) export(all bool) {
	for {
		p.mu.Lock()
		n := len(p.queue)
		if n == 0 || (!all && n < p.opts.MaxExportBatchSize) {
			p.mu.Unlock()
			return
		}
		batch := p.queue
		if n > p.opts.MaxExportBatchSize {
			// Keep the rest queued in order: copy it into the spare slice.
			rest := append(p.spare[:0], p.queue[p.opts.MaxExportBatchSize:]...)
			batch = p.queue[:p.opts.MaxExportBatchSize]
			p.queue = rest
		} else {
			p.queue = p.spare[:0]
		}
		p.spare = nil
		p.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), p.opts.ExportTimeout)
		err := p.exp.ExportSpans(ctx, batch)
		cancel()
		if err != nil {
			err = fmt.Errorf("observe: exporting %d spans: %w", len(batch), err)
			p.errMu.Lock()
			p.lastErr = err
			p.errMu.Unlock()
			otel.Handle(err)
		}
		clear(batch) // let the spans be collected
		p.mu.Lock()
		if p.spare == nil && cap(batch) >= p.opts.MaxExportBatchSize {
			p.spare = batch[:0]
		}
		p.mu.Unlock()
	}
}

func (p *BatchProcessor) takeErr() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	err := p.lastErr
	p.lastErr = nil
	return err
}
