package observe

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// BufferedWriter batches log lines in memory and writes them to the underlying writer in
// one call when the buffer fills or when the oldest unwritten line is a flush interval
// old, whichever comes first. One write system call per request (an access-log line) costs
// as much as writing the response itself; batching turns hundreds of them into one.
//
// Lines are lost only if the process dies without running its shutdown (SIGKILL, OOM):
// at most one interval's worth. Call Flush or Close at shutdown (svckit.App does); pair it
// with [FlushOnLevel] so error lines are written at once.
type BufferedWriter struct {
	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	size     int
	interval time.Duration
	timer    *time.Timer
	armed    bool
	closed   bool
	err      error
}

// NewBufferedWriter returns a writer that buffers up to size bytes for at most interval.
// size <= 0 means 64 KiB; interval <= 0 means 100 ms.
func NewBufferedWriter(w io.Writer, size int, interval time.Duration) *BufferedWriter {
	if size <= 0 {
		size = 64 << 10
	}
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	b := &BufferedWriter{w: w, buf: make([]byte, 0, size), size: size, interval: interval}
	b.timer = time.AfterFunc(time.Hour, func() { _ = b.Flush() })
	b.timer.Stop()
	return b
}

// Write buffers p. It writes through at once when p does not fit or the writer is closed.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > b.size {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > b.size {
			return b.w.Write(p)
		}
	}
	b.buf = append(b.buf, p...)
	if !b.armed {
		b.armed = true
		b.timer.Reset(b.interval)
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *BufferedWriter) flushLocked() error {
	if b.armed {
		b.timer.Stop()
		b.armed = false
	}
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	if err != nil && b.err == nil {
		b.err = err
	}
	return err
}

// Close flushes and makes later writes go straight through.
func (b *BufferedWriter) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.flushLocked()
	b.closed = true
	return err
}

// Flusher is a writer that can write out what it buffers.
type Flusher interface{ Flush() error }

// FlushOnLevel returns a handler that flushes f after every record at level or above, so
// that errors reach the log at once even when lines are buffered.
func FlushOnLevel(h slog.Handler, f Flusher, level slog.Level) slog.Handler {
	return &flushHandler{Handler: h, f: f, level: level}
}

type flushHandler struct {
	slog.Handler
	f     Flusher
	level slog.Level
}

func (h *flushHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.level {
		_ = h.f.Flush()
	}
	return err
}

func (h *flushHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithAttrs(attrs), f: h.f, level: h.level}
}

func (h *flushHandler) WithGroup(name string) slog.Handler {
	return &flushHandler{Handler: h.Handler.WithGroup(name), f: h.f, level: h.level}
}
