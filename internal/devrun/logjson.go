package devrun

import (
	"encoding/json"
	"strings"
	"unicode/utf8"
)

// logFields are the fields of a JSON log line the log filters need.
type logFields struct {
	Time    string `json:"time"`
	Level   string `json:"level"`
	Msg     string `json:"msg"`
	TraceID string `json:"trace_id"`
}

// parseLogFields reads the fields of a JSON log line (an object) as json.Unmarshal into
// logFields does, and reports whether raw is such a line. Every service's access log and
// slog lines come through here, so the common line — an object whose wanted fields are
// plain strings — is read by scanning it once, without reflection; anything else goes to
// json.Unmarshal.
func parseLogFields(raw string) (logFields, bool) {
	if f, ok := scanLogFields(raw); ok {
		return f, true
	}
	var f logFields
	return f, json.Unmarshal([]byte(raw), &f) == nil
}

// scanLogFields is parseLogFields's fast path; false means "ask json.Unmarshal": raw is
// not an object, a wanted field is not a string, or a string needs more than copying.
// Nested objects and arrays are skipped, not checked.
func scanLogFields(raw string) (logFields, bool) {
	var f logFields
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return f, false
	}
	i = skipWS(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return f, skipWS(raw, i+1) == len(raw)
	}
	for {
		key, next, ok := scanString(raw, i)
		if !ok {
			return f, false
		}
		i = skipWS(raw, next)
		if i >= len(raw) || raw[i] != ':' {
			return f, false
		}
		i = skipWS(raw, i+1)
		var dst *string
		switch len(key) { // EqualFold only for a key of a wanted field's length
		case len("time"):
			if strings.EqualFold(key, "time") {
				dst = &f.Time
			}
		case len("level"):
			if strings.EqualFold(key, "level") {
				dst = &f.Level
			}
		case len("msg"):
			if strings.EqualFold(key, "msg") {
				dst = &f.Msg
			}
		case len("trace_id"):
			if strings.EqualFold(key, "trace_id") {
				dst = &f.TraceID
			}
		}
		if dst != nil && strings.HasPrefix(raw[i:], "null") {
			i += 4 // null leaves the field as it is
		} else if dst != nil {
			v, next, ok := scanString(raw, i)
			if !ok {
				return f, false
			}
			*dst, i = v, next
		} else if i, ok = skipValue(raw, i); !ok {
			return f, false
		}
		i = skipWS(raw, i)
		if i >= len(raw) {
			return f, false
		}
		switch raw[i] {
		case ',':
			i = skipWS(raw, i+1)
		case '}':
			return f, skipWS(raw, i+1) == len(raw)
		default:
			return f, false
		}
	}
}

// scanString returns the JSON string at raw[i] when it needs no unescaping: no backslash,
// no control character, valid UTF-8.
func scanString(raw string, i int) (string, int, bool) {
	if i >= len(raw) || raw[i] != '"' {
		return "", i, false
	}
	ascii := true
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			s := raw[i+1 : j]
			if !ascii && !utf8.ValidString(s) {
				return "", i, false
			}
			return s, j + 1, true
		case c == '\\' || c < 0x20:
			return "", i, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", i, false
}

// skipValue returns the index after the JSON value at raw[i]: a string (escapes
// allowed), a number or literal, or an object or array skipped by its brackets.
func skipValue(raw string, i int) (int, bool) {
	if i >= len(raw) {
		return i, false
	}
	switch raw[i] {
	case '"':
		j, ok := skipString(raw, i)
		return j, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(raw); j++ {
			switch raw[j] {
			case '"':
				k, ok := skipString(raw, j)
				if !ok {
					return j, false
				}
				j = k - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1, true
				}
			}
		}
		return i, false
	case ',', '}', ']', ':':
		return i, false
	}
	j := i // a number, true, false or null: up to the next delimiter
	for j < len(raw) && raw[j] != ',' && raw[j] != '}' && raw[j] != ']' && !isWS(raw[j]) {
		j++
	}
	if v := raw[i:j]; v != "true" && v != "false" && v != "null" && !jsonNumber(v) {
		return i, false
	}
	return j, true
}

// jsonNumber reports whether v is a number by JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonNumber(v string) bool {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(v) && v[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(v) && v[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(v)
}

// skipString returns the index after the JSON string at raw[i].
func skipString(raw string, i int) (int, bool) {
	for j := i + 1; j < len(raw); j++ {
		switch c := raw[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\':
			j++
		case c < 0x20:
			return i, false
		}
	}
	return i, false
}

func skipWS(raw string, i int) int {
	for i < len(raw) && isWS(raw[i]) {
		i++
	}
	return i
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
