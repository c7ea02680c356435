package binding

import (
	"fmt"
	"strings"

	"github.com/svckit/svckit/store"
)

// namedStatement is a SQL statement whose :name parameters were replaced by the
// dialect's placeholders.
type namedStatement struct {
	sql   string
	names []string // the parameter of each placeholder, in order
}

// parseNamed replaces each :name in query (outside string literals, quoted identifiers,
// comments and PostgreSQL dollar-quoted strings; "::" casts are left alone) with the
// dialect's next placeholder. Positional ? placeholders are rejected so that the two
// styles never mix.
func parseNamed(query string, d store.Dialect) (namedStatement, error) {
	var b strings.Builder
	var st namedStatement
	n := len(query)
	for i := 0; i < n; {
		c := query[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < n {
				if query[j] == c {
					if j+1 < n && query[j+1] == c { // doubled quote: an escaped one
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= n {
				return st, fmt.Errorf("unterminated %c quote at byte %d", c, i)
			}
			b.WriteString(query[i : j+1])
			i = j + 1
		case c == '-' && i+1 < n && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = n - i
			}
			b.WriteString(query[i : i+j])
			i += j
		case c == '/' && i+1 < n && query[i+1] == '*':
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				return st, fmt.Errorf("unterminated comment at byte %d", i)
			}
			b.WriteString(query[i : i+2+j+2])
			i += 2 + j + 2
		case c == '$' && d == store.Postgres && dollarTag(query[i:]) != "":
			tag := dollarTag(query[i:])
			j := strings.Index(query[i+len(tag):], tag)
			if j < 0 {
				return st, fmt.Errorf("unterminated %s string at byte %d", tag, i)
			}
			end := i + len(tag) + j + len(tag)
			b.WriteString(query[i:end])
			i = end
		case c == ':' && i+1 < n && query[i+1] == ':':
			b.WriteString("::")
			i += 2
		case c == ':' && i+1 < n && identStart(query[i+1]):
			j := i + 2
			for j < n && identPart(query[j]) {
				j++
			}
			st.names = append(st.names, query[i+1:j])
			b.WriteString(d.Placeholder(len(st.names)))
			i = j
		case c == '?':
			return st, fmt.Errorf("positional ? at byte %d; use named parameters such as :id", i)
		default:
			b.WriteByte(c)
			i++
		}
	}
	st.sql = b.String()
	return st, nil
}

// dollarTag returns the opening $tag$ of a PostgreSQL dollar-quoted string at the start
// of s, or "".
func dollarTag(s string) string {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1]
		case identPart(c) && !(j == 1 && c >= '0' && c <= '9'):
		default:
			return ""
		}
	}
	return ""
}

func identStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func identPart(c byte) bool { return identStart(c) || (c >= '0' && c <= '9') }
