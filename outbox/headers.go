package outbox

import (
	"errors"
	"strconv"
	"strings"
)

// The headers column holds a message's headers as netstring-like pairs, which both
// dialects store as text and which cost a fraction of JSON to write and read:
//
//	<len(key)>:<key><len(value)>:<value>…
//
// for example "5:ce-id3:abc".
func encodeHeaders(h map[string]string) string {
	n := 0
	for k, v := range h {
		n += len(k) + len(v) + 8
	}
	b := make([]byte, 0, n)
	for k, v := range h {
		b = appendHeader(b, k, v)
	}
	return string(b)
}

// appendHeader appends the pair k, v to b in the headers column's format.
func appendHeader(b []byte, k, v string) []byte {
	b = strconv.AppendInt(b, int64(len(k)), 10)
	b = append(b, ':')
	b = append(b, k...)
	b = strconv.AppendInt(b, int64(len(v)), 10)
	b = append(b, ':')
	return append(b, v...)
}

// headerWriter is a propagation.TextMapCarrier that appends what a propagator injects to
// a headers column.
type headerWriter struct{ b *[]byte }

func (w headerWriter) Get(string) string { return "" }
func (w headerWriter) Set(k, v string)   { *w.b = appendHeader(*w.b, k, v) }
func (w headerWriter) Keys() []string    { return nil }

var errHeaders = errors.New("malformed headers column")

// nextHeader returns the first pair of s, a headers column, and the rest of s.
func nextHeader(s string) (k, v, rest string, err error) {
	if k, s, err = nextField(s); err != nil {
		return "", "", "", err
	}
	if v, s, err = nextField(s); err != nil {
		return "", "", "", err
	}
	return k, v, s, nil
}

// nextField returns the first <len>:<text> field of s and the rest of s.
func nextField(s string) (field, rest string, err error) {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return "", "", errHeaders
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n < 0 || i+1+n > len(s) {
		return "", "", errHeaders
	}
	return s[i+1 : i+1+n], s[i+1+n:], nil
}

// decodeHeaders reverses encodeHeaders; of pairs with the same key, the last one wins.
func decodeHeaders(s string) (map[string]string, error) {
	h := make(map[string]string, 8)
	for s != "" {
		k, v, rest, err := nextHeader(s)
		if err != nil {
			return nil, err
		}
		h[k], s = v, rest
	}
	return h, nil
}
