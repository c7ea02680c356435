package observe

import (
	"context"
	"io"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"

	"github.com/svckit/svckit/transport/meta"
)

// hexDigits are the digits of the lowercase hexadecimal trace and span ids.
const hexDigits = "0123456789abcdef"

// Log attribute keys added by the context handler.
const (
	TraceIDKey   = "trace_id"
	SpanIDKey    = "span_id"
	RequestIDKey = "request_id"
)

// LogOptions configures NewLogger.
type LogOptions struct {
	// Level is the minimum level logged; nil means slog.LevelInfo. A *slog.LevelVar lets
	// the level change at run time.
	Level slog.Leveler
	// Format is "json" (the default) or "text". Any other value means "json".
	Format string
	// AddSource adds the source file and line of each log call.
	AddSource bool
	// Service, if set, is added to every line as the "service" attribute.
	Service string
	// Flush, if set, is flushed after every record at FlushLevel or above: pass the
	// [BufferedWriter] that w is, so that errors are written at once.
	Flush Flusher
	// FlushLevel is the level from which records flush; the zero value is Info, so set it
	// (usually to slog.LevelError) whenever Flush is set.
	FlushLevel slog.Level
}

// NewLogger returns a logger that writes one line per record to w, in JSON unless
// opts.Format is "text". Its handler is wrapped by NewContextHandler, so records logged
// with a context carry trace_id, span_id and request_id.
func NewLogger(w io.Writer, opts LogOptions) *slog.Logger {
	ho := &slog.HandlerOptions{Level: opts.Level, AddSource: opts.AddSource}
	var (
		h     slog.Handler
		lines *lineFormat
	)
	if opts.Format == "text" {
		h = slog.NewTextHandler(w, ho)
	} else {
		lw := &lockedWriter{w: w}
		h = slog.NewJSONHandler(lw, ho)
		if !opts.AddSource {
			// AccessLog encodes its lines itself, in this handler's format.
			lines = &lineFormat{w: lw, level: opts.Level, flush: opts.Flush, flushLevel: opts.FlushLevel}
		}
	}
	if opts.Service != "" {
		h = h.WithAttrs([]slog.Attr{slog.String("service", opts.Service)})
		if lines != nil {
			lines.attrs = appendJSONAttr(nil, "service", opts.Service)
		}
	}
	if opts.Flush != nil {
		h = FlushOnLevel(h, opts.Flush, opts.FlushLevel)
	}
	return slog.New(&contextHandler{base: h, h: h, lines: lines})
}

// NewContextHandler returns a handler that adds to each record, before passing it to h, the
// ids found in the record's context: trace_id and span_id of a valid OpenTelemetry span
// context, and request_id if one was set with meta.WithRequestID, as the transports do for
// every served call. Records logged without a context, or with a context that carries no
// ids, pass unchanged.
//
// The ids are always top-level attributes, also for loggers derived with WithGroup. Wrapping
// a handler that is already a context handler returns it unchanged.
func NewContextHandler(h slog.Handler) slog.Handler {
	if ch, ok := h.(*contextHandler); ok {
		return ch
	}
	return &contextHandler{base: h, h: h}
}

// contextHandler is the handler NewContextHandler returns.
//
// base is the wrapped handler with the attributes added before the first group; h is base
// with all groups and attributes added since (h == base while there are no groups). The
// ids must not land inside a group, so when there are groups Handle rebuilds h from base
// with the ids added first, replaying ops.
//
// lines is set only on the handler NewLogger returns, whose records AccessLog may encode
// itself; handlers derived with WithAttrs or WithGroup drop it.
type contextHandler struct {
	base  slog.Handler
	h     slog.Handler
	ops   []handlerOp
	lines *lineFormat
}

// handlerOp is a WithGroup (group != "") or WithAttrs call made after the first group.
type handlerOp struct {
	group string
	attrs []slog.Attr
}

var _ slog.Handler = (*contextHandler)(nil)

// Enabled reports whether the wrapped handler handles records at level.
func (c *contextHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return c.h.Enabled(ctx, level)
}

// Handle adds the context's ids to r and passes it to the wrapped handler.
func (c *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx == nil {
		return c.h.Handle(ctx, r)
	}
	var ids [3]slog.Attr
	n := contextIDs(ctx, &ids)
	if n == 0 {
		return c.h.Handle(ctx, r)
	}
	if len(c.ops) == 0 {
		r = r.Clone() // the caller's Record may share its attribute slice
		r.AddAttrs(ids[:n]...)
		return c.h.Handle(ctx, r)
	}
	h := c.base.WithAttrs(slices.Clone(ids[:n])) // a copy keeps ids on the stack
	for _, op := range c.ops {
		if op.group != "" {
			h = h.WithGroup(op.group)
		} else {
			h = h.WithAttrs(op.attrs)
		}
	}
	return h.Handle(ctx, r)
}

// WithAttrs returns a context handler whose wrapped handler has attrs added.
func (c *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return c
	}
	if len(c.ops) == 0 {
		h := c.h.WithAttrs(attrs)
		return &contextHandler{base: h, h: h}
	}
	return &contextHandler{
		base: c.base,
		h:    c.h.WithAttrs(attrs),
		ops:  appendOp(c.ops, handlerOp{attrs: slices.Clone(attrs)}),
	}
}

// WithGroup returns a context handler whose wrapped handler opens group name.
func (c *contextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return c
	}
	return &contextHandler{
		base: c.base,
		h:    c.h.WithGroup(name),
		ops:  appendOp(c.ops, handlerOp{group: name}),
	}
}

// appendOp returns ops with op appended, never sharing the backing array with ops.
func appendOp(ops []handlerOp, op handlerOp) []handlerOp {
	out := make([]handlerOp, len(ops), len(ops)+1)
	copy(out, ops)
	return append(out, op)
}

// contextIDs fills ids with the trace_id, span_id and request_id attributes that ctx
// carries and returns how many it found.
func contextIDs(ctx context.Context, ids *[3]slog.Attr) int {
	n := 0
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// One allocation for both ids: 32 + 16 hex digits.
		var buf [48]byte
		tid, sid := sc.TraceID(), sc.SpanID()
		b := buf[:0]
		for _, x := range tid {
			b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
		}
		for _, x := range sid {
			b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
		}
		s := string(b)
		ids[0] = slog.String(TraceIDKey, s[:32])
		ids[1] = slog.String(SpanIDKey, s[32:])
		n = 2
	}
	if id := meta.RequestID(ctx); id != "" {
		ids[n] = slog.String(RequestIDKey, id)
		n++
	}
	return n
}
