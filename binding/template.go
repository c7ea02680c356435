package binding

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/svckit/svckit/svcerr"
)

// template is a string with {key} placeholders filled from request metadata.
type template struct {
	parts []string // literal, key, literal, key, …, literal
}

// parseTemplate parses s; "{{" and "}}" are not special, a key is any text without
// braces.
func parseTemplate(s string) (template, error) {
	var t template
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return t, fmt.Errorf("%q: } without {", s)
			}
			t.parts = append(t.parts, s)
			return t, nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return t, fmt.Errorf("%q: { without }", s)
		}
		key := s[i+1 : i+j]
		if key == "" || strings.IndexByte(key, '{') >= 0 || strings.IndexByte(s[:i], '}') >= 0 {
			return t, fmt.Errorf("%q: malformed placeholder", s)
		}
		t.parts = append(t.parts, s[:i], key)
		s = s[i+j+1:]
	}
}

// static reports whether t has no placeholders.
func (t template) static() bool { return len(t.parts) == 1 }

// fill returns t with each placeholder replaced by escape(value); a key missing from md
// is an InvalidArgument error.
func (t template) fill(md map[string]string, escape func(i int, v string) (string, error)) (string, error) {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v, ok := md[p]
		if !ok {
			return "", svcerr.Errorf(svcerr.InvalidArgument, "metadata %q is missing for the placeholder {%s}", p, p)
		}
		if escape != nil {
			var err error
			if v, err = escape(i, v); err != nil {
				return "", err
			}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// urlEscaper escapes placeholders before the template's first "?" as path segments and
// after it as query values.
func (t template) urlEscaper() func(int, string) (string, error) {
	query := -1
	for i := 0; i < len(t.parts); i += 2 {
		if strings.IndexByte(t.parts[i], '?') >= 0 {
			query = i
			break
		}
	}
	return func(i int, v string) (string, error) {
		if query >= 0 && i > query {
			return url.QueryEscape(v), nil
		}
		return url.PathEscape(v), nil
	}
}

// headerValue rejects values that would end a header line.
func headerValue(_ int, v string) (string, error) {
	if strings.ContainsAny(v, "\r\n\x00") {
		return "", svcerr.New(svcerr.InvalidArgument, "a header value from metadata contains a line break")
	}
	return v, nil
}

// subjectToken rejects values that are not one NATS subject token.
func subjectToken(_ int, v string) (string, error) {
	if v == "" || strings.ContainsAny(v, ".*> \t\r\n") {
		return "", svcerr.Errorf(svcerr.InvalidArgument, "metadata value %q is not a single subject token", v)
	}
	return v, nil
}
