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
		b = strconv.AppendInt(b, int64(len(k)), 10)
		b = append(b, ':')
		b = append(b, k...)
		b = strconv.AppendInt(b, int64(len(v)), 10)
		b = append(b, ':')
		b = append(b, v...)
	}
	return string(b)
}

var errHeaders = errors.New("malformed headers column")

// decodeHeaders reverses encodeHeaders.
func decodeHeaders(s string) (map[string]string, error) {
	h := make(map[string]string, 8)
	next := func() (string, error) {
		i := strings.IndexByte(s, ':')
		if i <= 0 {
			return "", errHeaders
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || i+1+n > len(s) {
			return "", errHeaders
		}
		v := s[i+1 : i+1+n]
		s = s[i+1+n:]
		return v, nil
	}
	for s != "" {
		k, err := next()
		if err != nil {
			return nil, err
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		h[k] = v
	}
	return h, nil
}
