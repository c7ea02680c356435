// Package spanqueue is the bounded queue and export goroutine behind observe's
// BatchProcessor and observe/otlp's TracerProvider.
//
// Ending a span appends it to a slice under a mutex; the export goroutine is woken only
// when a batch is full, when the schedule delay has passed, or on ForceFlush and
// Shutdown. (The OpenTelemetry SDK's batch span processor sends every span over a
// channel, which wakes its goroutine once per span; on a server with one or two cores
// that context switch per request is a measurable share of what tracing costs.) Spans
// added while the queue is full are dropped and counted, never blocking the caller.
package spanqueue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
)

// Options bounds a Queue; zero values take the OpenTelemetry SDK's defaults (5 s, 30 s,
// 2048, 512), and MaxExportBatchSize is at most MaxQueueSize.
type Options struct {
	// ScheduleDelay is the longest a span waits before its batch is exported.
	ScheduleDelay time.Duration
	// ExportTimeout bounds one export.
	ExportTimeout time.Duration
	// MaxQueueSize is how many spans wait at most; more are dropped.
	MaxQueueSize int
	// MaxExportBatchSize is how many spans one export carries at most.
	MaxExportBatchSize int
}

// WithDefaults returns o with the defaults filled in.
func (o Options) WithDefaults() Options {
	if o.ScheduleDelay <= 0 {
		o.ScheduleDelay = 5 * time.Second
	}
	if o.ExportTimeout <= 0 {
		o.ExportTimeout = 30 * time.Second
	}
	if o.MaxQueueSize <= 0 {
		o.MaxQueueSize = 2048
	}
	if o.MaxExportBatchSize <= 0 {
		o.MaxExportBatchSize = 512
	}
	o.MaxExportBatchSize = min(o.MaxExportBatchSize, o.MaxQueueSize)
	return o
}

// Queue holds ended spans of type T and exports them in batches from its own goroutine.
type Queue[T any] struct {
	opts   Options
	export func(context.Context, []T) error
	prefix string // of export errors, e.g. "observe"

	mu    sync.Mutex
	queue []T
	spare []T // the previous batch's slice, reused

	kick    chan struct{}      // capacity 1: a full batch is waiting
	flush   chan chan struct{} // ForceFlush requests
	stop    chan struct{}      // closed by Shutdown
	done    chan struct{}      // closed when the export goroutine has exported the rest
	stopped atomic.Bool
	dropped atomic.Int64
	errMu   sync.Mutex
	lastErr error
	once    sync.Once
}

// New returns a queue whose batches go to export, and starts its export goroutine;
// Shutdown stops it. Export errors are reported to otel.Handle, prefixed with prefix, and
// kept for ForceFlush and Shutdown to return.
func New[T any](opts Options, prefix string, export func(ctx context.Context, batch []T) error) *Queue[T] {
	opts = opts.WithDefaults()
	q := &Queue[T]{
		opts:   opts,
		export: export,
		prefix: prefix,
		queue:  make([]T, 0, opts.MaxExportBatchSize),
		kick:   make(chan struct{}, 1),
		flush:  make(chan chan struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go q.loop()
	return q
}

// Options returns the queue's options, defaults filled in.
func (q *Queue[T]) Options() Options { return q.opts }

// Stopped reports whether Shutdown has been called.
func (q *Queue[T]) Stopped() bool { return q.stopped.Load() }

// Dropped returns how many spans were dropped because the queue was full.
func (q *Queue[T]) Dropped() int64 { return q.dropped.Load() }

// Add queues s for export, or drops it if the queue is full; after Shutdown it does
// nothing.
func (q *Queue[T]) Add(s T) {
	if q.stopped.Load() {
		return
	}
	q.mu.Lock()
	if len(q.queue) >= q.opts.MaxQueueSize {
		q.mu.Unlock()
		q.dropped.Add(1)
		return
	}
	q.queue = append(q.queue, s)
	full := len(q.queue) == q.opts.MaxExportBatchSize
	q.mu.Unlock()
	if full {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
}

// ForceFlush exports every span queued so far, and returns when they are exported or ctx
// ends. It returns the error of the last failed export since the previous ForceFlush.
func (q *Queue[T]) ForceFlush(ctx context.Context) error {
	if q.stopped.Load() {
		return nil
	}
	ack := make(chan struct{})
	select {
	case q.flush <- ack:
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return q.takeErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports the spans still queued, stops the export goroutine and then calls
// then (the exporter's Shutdown), once. Spans added afterwards are not exported. It
// returns when done or when ctx ends.
func (q *Queue[T]) Shutdown(ctx context.Context, then func(context.Context) error) error {
	var err error
	q.once.Do(func() {
		q.stopped.Store(true)
		close(q.stop)
		select {
		case <-q.done:
		case <-ctx.Done():
			err = ctx.Err()
			return
		}
		err = errors.Join(q.takeErr(), then(ctx))
	})
	return err
}

// loop is the export goroutine.
func (q *Queue[T]) loop() {
	defer close(q.done)
	timer := time.NewTimer(q.opts.ScheduleDelay)
	defer timer.Stop()
	for {
		select {
		case <-q.kick:
			q.exportBatches(false)
		case <-timer.C:
			q.exportBatches(true)
		case ack := <-q.flush:
			q.exportBatches(true)
			close(ack)
		case <-q.stop:
			q.exportBatches(true)
			return
		}
		timer.Reset(q.opts.ScheduleDelay)
	}
}

// exportBatches exports full batches, and with all also the last partial one.
func (q *Queue[T]) exportBatches(all bool) {
	for {
		q.mu.Lock()
		n := len(q.queue)
		if n == 0 || (!all && n < q.opts.MaxExportBatchSize) {
			q.mu.Unlock()
			return
		}
		batch := q.queue
		if n > q.opts.MaxExportBatchSize {
			// Keep the rest queued in order: copy it into the spare slice.
			rest := append(q.spare[:0], q.queue[q.opts.MaxExportBatchSize:]...)
			batch = q.queue[:q.opts.MaxExportBatchSize]
			q.queue = rest
		} else {
			q.queue = q.spare[:0]
		}
		q.spare = nil
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), q.opts.ExportTimeout)
		err := q.export(ctx, batch)
		cancel()
		if err != nil {
			err = fmt.Errorf("%s: exporting %d spans: %w", q.prefix, len(batch), err)
			q.errMu.Lock()
			q.lastErr = err
			q.errMu.Unlock()
			otel.Handle(err)
		}
		clear(batch) // let the spans be collected
		q.mu.Lock()
		if q.spare == nil && cap(batch) >= q.opts.MaxExportBatchSize {
			q.spare = batch[:0]
		}
		q.mu.Unlock()
	}
}

func (q *Queue[T]) takeErr() error {
	q.errMu.Lock()
	defer q.errMu.Unlock()
	err := q.lastErr
	q.lastErr = nil
	return err
}
