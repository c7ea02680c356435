package otlp

import (
	"slices"

	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// leanGroup is the spans of one tracer (instrumentation scope) in a lean batch.
type leanGroup struct {
	t     *tracer
	count int
	start int // first index in encoder.leanOrder
}

// encodeLean replaces the encoder's output with the request for spans, ended spans of
// one [TracerProvider]: one ResourceSpans for res, encoded once, holding a ScopeSpans per
// tracer in the order in which each was first seen, spans keeping their order within a
// scope. It reports the number of spans encoded.
func (e *encoder) encodeLean(res *resource.Resource, spans []*span) int {
	e.off = len(e.buf)
	if len(spans) == 0 {
		return 0
	}
	groups := e.leanGroups[:0]
	e.spanOf = e.spanOf[:0]
	last := -1
	for _, s := range spans {
		g := -1
		if last >= 0 && groups[last].t == s.tracer {
			g = last
		} else {
			for i := range groups {
				if groups[i].t == s.tracer {
					g = i
					break
				}
			}
			if g < 0 {
				g = len(groups)
				groups = append(groups, leanGroup{t: s.tracer})
			}
		}
		groups[g].count++
		e.spanOf = append(e.spanOf, int32(g)) // #nosec G115 -- at most one group per span
		last = g
	}
	start := 0
	for i := range groups {
		groups[i].start = start
		start += groups[i].count
	}
	order := e.leanOrder
	if len(groups) == 1 {
		order = spans
	} else {
		order = slices.Grow(order[:0], len(spans))[:len(spans)]
		for i, s := range spans {
			g := e.spanOf[i]
			order[groups[g].start] = s
			groups[g].start++
		}
		for i := range groups {
			groups[i].start -= groups[i].count
		}
		e.leanOrder = order
	}

	end := e.pos()
	e.prependString(tagResourceSpansSchemaURL, res.SchemaURL())
	for i := len(groups) - 1; i >= 0; i-- {
		g := &groups[i]
		send := e.pos()
		e.prependString(tagScopeSpansSchemaURL, g.t.scope.SchemaURL)
		for k := g.start + g.count - 1; k >= g.start; k-- {
			e.prependLeanSpan(order[k])
		}
		e.prependScope(g.t.scope)
		e.prependLen(tagResourceSpansScopeSpans, send)
	}
	rend := e.pos()
	set := res.Set()
	for k := set.Len() - 1; k >= 0; k-- {
		kv, _ := set.Get(k)
		e.prependKeyValue(tagResourceAttributes, kv)
	}
	e.prependLen(tagResourceSpansResource, rend)
	e.prependLen(tagRequestResourceSpans, end)

	clear(groups)
	e.leanGroups = groups[:0]
	clear(e.leanOrder)
	return len(spans)
}

// prependScope writes a ScopeSpans.scope field, unless scope is empty.
func (e *encoder) prependScope(scope instrumentation.Scope) {
	if scope == (instrumentation.Scope{}) {
		return
	}
	send := e.pos()
	for k := scope.Attributes.Len() - 1; k >= 0; k-- {
		kv, _ := scope.Attributes.Get(k)
		e.prependKeyValue(tagScopeAttributes, kv)
	}
	e.prependString(tagScopeVersion, scope.Version)
	e.prependString(tagScopeName, scope.Name)
	e.prependLen(tagScopeSpansScope, send)
}

// prependLeanSpan writes an ended span of a TracerProvider. Nothing writes an ended
// span's fields, so they are read without its lock.
func (e *encoder) prependLeanSpan(s *span) {
	f := spanFields{
		sc:           s.sc,
		parent:       trace.NewSpanContext(trace.SpanContextConfig{SpanID: s.psid, Remote: s.remote}),
		name:         s.name,
		kind:         s.kind,
		start:        s.start,
		end:          s.start.Add(s.dur),
		attrs:        s.attrs,
		droppedAttrs: int(s.droppedAttrs),
		status:       s.status,
	}
	if x := s.extra; x != nil {
		// As the SDK's snapshot: dropped counts only alongside kept events or links (a
		// limit of 0 drops them all without a count on the wire).
		if len(x.events) > 0 {
			f.events, f.droppedEvents = x.events, x.droppedEvs
		}
		if len(x.links) > 0 {
			f.links, f.droppedLinks = x.links, x.droppedLinks
		}
	}
	e.prependFields(&f)
}
