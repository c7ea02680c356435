package gen

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// words splits a Go identifier into words at case changes, digits stay with the word
// before them, and runs of capitals are one word ("UserID" → User, ID; "HTTPServer" →
// HTTP, Server; "user_id" → user, id).
func words(s string) []string {
	var out []string
	rs := []rune(s)
	start := 0
	flush := func(end int) {
		if end > start {
			out = append(out, string(rs[start:end]))
		}
		start = end
	}
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '_' || r == '-' {
			flush(i)
			start = i + 1
			continue
		}
		if i == start {
			continue
		}
		prev := rs[i-1]
		switch {
		case unicode.IsUpper(r) && (unicode.IsLower(prev) || unicode.IsDigit(prev)):
			flush(i)
		case unicode.IsUpper(r) && unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
			flush(i)
		}
	}
	flush(len(rs))
	return out
}

// kebab returns "get-profile" for "GetProfile".
func kebab(s string) string { return strings.ToLower(strings.Join(words(s), "-")) }

// snake returns "user_id" for "UserID".
func snake(s string) string { return strings.ToLower(strings.Join(words(s), "_")) }

// exported returns s with its first letter upper-cased.
func exported(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// initialisms are the words Go style writes in one case.
var initialisms = map[string]bool{
	"api": true, "ascii": true, "cpu": true, "css": true, "dns": true, "eof": true, "grpc": true,
	"guid": true, "html": true, "http": true, "https": true, "id": true, "ip": true, "json": true,
	"lhs": true, "rhs": true, "rpc": true, "sql": true, "ssh": true, "tcp": true, "tls": true, "ttl": true,
	"udp": true, "ui": true, "uid": true, "uri": true, "url": true, "utf8": true, "uuid": true,
	"vm": true, "xml": true,
}

// goName returns the exported Go field name of a parameter name: its first letter
// upper-cased and initialisms in capitals ("id" → "ID", "userUrl" → "UserURL").
func goName(s string) string {
	var b strings.Builder
	for _, w := range words(s) {
		if initialisms[strings.ToLower(w)] {
			b.WriteString(strings.ToUpper(w))
		} else {
			b.WriteString(exported(w))
		}
	}
	return b.String()
}

// lowerCamel returns the JSON name svckit gives a generated field: the Go name with its
// leading capital run lower-cased ("UserID" → "userID", "ID" → "id", "URLPath" → "urlPath").
func lowerCamel(s string) string {
	rs := []rune(s)
	n := 0
	for n < len(rs) && unicode.IsUpper(rs[n]) {
		n++
	}
	switch {
	case n == 0:
		return s
	case n == 1 || n == len(rs):
		// one capital, or all capitals
	case unicode.IsLower(rs[n]):
		n-- // the last capital starts the next word: "URLPath" → "url" + "Path"
	}
	for i := 0; i < n; i++ {
		rs[i] = unicode.ToLower(rs[i])
	}
	return string(rs)
}

// protoJSONName is protoc's default json_name for a field name: underscores dropped and
// the letter after each capitalised.
func protoJSONName(name string) string {
	var b strings.Builder
	up := false
	for _, r := range name {
		if r == '_' {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
