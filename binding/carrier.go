package binding

import (
	"strings"

	"github.com/nats-io/nats.go"
)

// natsCarrier is a propagation.TextMapCarrier on NATS headers, whose keys are case
// sensitive: Get finds a key in any case, Set writes it in lower case as W3C does.
type natsCarrier nats.Header

// Get returns the first value of key in any case.
func (c natsCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set sets key to value.
func (c natsCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys returns the keys.
func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
