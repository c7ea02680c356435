package http

import (
	"net/http"
	"net/textproto"

	"go.opentelemetry.io/otel/propagation"
)

// headerCarrier is propagation.HeaderCarrier with the names the W3C propagators ask for
// (traceparent, tracestate, baggage) mapped to their canonical header keys directly.
// http.Header canonicalises a lower-case key into a new string on every lookup, so
// extracting and injecting trace context through propagation.HeaderCarrier costs an
// allocation per header; other keys are canonicalised as http.Header does.
type headerCarrier http.Header

var (
	_ propagation.TextMapCarrier = headerCarrier{}
	_ propagation.ValuesGetter   = headerCarrier{}
)

// canonicalKey returns the canonical header key of key, as textproto.CanonicalMIMEHeaderKey.
func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

// Get returns the first value of the header key, or "".
func (c headerCarrier) Get(key string) string {
	if v := c[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of the header key.
func (c headerCarrier) Values(key string) []string { return c[canonicalKey(key)] }

// Set replaces the values of the header key with value.
func (c headerCarrier) Set(key, value string) { c[canonicalKey(key)] = []string{value} }

// Keys returns the header's keys.
func (c headerCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }
