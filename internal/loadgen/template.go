package loadgen

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"text/template"
	"time"
)

// MaxBodyBytes bounds a rendered template: a request body, a header value, a path.
const MaxBodyBytes = 1 << 20

// Template is a request body, path or header value that may vary per call. It is Go
// text/template text with the call's fields and a few functions:
//
//	{{.N}}              the call's number in the run, from 0
//	{{.Worker}}         the worker sending it, from 0
//	{{randInt 1 100}}   a random integer in [1, 100]
//	{{randItem "a" "b"}} one of its arguments, at random
//	{{mod .N 7}}        arithmetic for mixes: mod, add
//	{{uuid}}            a random UUID (version 4)
//	{{now}}             the time, RFC 3339 with nanoseconds
//	{{json .X}}         a string quoted for JSON
//
// Text without "{{" is sent as it is, without the cost of executing a template.
type Template struct {
	raw    []byte
	t      *template.Template
	static bool
}

// TemplateData is what a Template sees as ".".
type TemplateData struct {
	N      int64
	Worker int
}

// ParseTemplate parses text as a Template; name appears in its errors. Text longer than
// MaxBodyBytes is refused.
func ParseTemplate(name, text string) (*Template, error) {
	if len(text) > MaxBodyBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than the limit of %d", name, len(text), MaxBodyBytes)
	}
	if !strings.Contains(text, "{{") {
		return &Template{raw: []byte(text), static: true}, nil
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	tp := &Template{t: t}
	if _, err := tp.Render(0, 0); err != nil { // fail now, not on every call
		return nil, err
	}
	return tp, nil
}

// Static reports whether the template renders the same text for every call.
func (t *Template) Static() bool { return t.static }

// Render returns the text for call n sent by worker. It fails when the result is larger
// than MaxBodyBytes.
func (t *Template) Render(n int64, worker int) ([]byte, error) {
	if t.static {
		return t.raw, nil
	}
	var b bytes.Buffer
	w := &limitWriter{b: &b, left: MaxBodyBytes}
	if err := t.t.Execute(w, TemplateData{N: n, Worker: worker}); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", t.t.Name(), err)
	}
	return b.Bytes(), nil
}

var errTooLarge = fmt.Errorf("rendered text is larger than %d bytes", MaxBodyBytes)

type limitWriter struct {
	b    *bytes.Buffer
	left int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, errTooLarge
	}
	w.left -= len(p)
	return w.b.Write(p)
}

// templateFuncs are a Template's functions; none keeps state between calls.
var templateFuncs = template.FuncMap{
	"randInt": func(lo, hi int) (int, error) {
		if hi < lo {
			return 0, fmt.Errorf("randInt %d %d: the upper bound is below the lower", lo, hi)
		}
		return lo + rand.IntN(hi-lo+1), nil
	},
	"randItem": func(items ...any) (any, error) {
		if len(items) == 0 {
			return nil, errors.New("randItem needs at least one argument")
		}
		return items[rand.IntN(len(items))], nil
	},
	"mod": func(a int64, b int) (int64, error) {
		if b == 0 {
			return 0, errors.New("mod by zero")
		}
		return a % int64(b), nil
	},
	"add":  func(a int64, b int) int64 { return a + int64(b) },
	"uuid": newUUID,
	"now":  func() string { return time.Now().UTC().Format(time.RFC3339Nano) },
	"json": func(s string) (string, error) {
		b, err := json.Marshal(s)
		return string(b), err
	},
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = crand.Read(b[:]) // never fails: it panics rather than return an error
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
