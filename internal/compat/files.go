package compat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Bounds of a saved contract: documents larger than these are refused, not read.
const (
	maxFileSize = 8 << 20
	maxFiles    = 64
)

// LoadFiles reads a saved contract: the .proto and OpenAPI (*.openapi.json) documents
// svckit gen wrote, given as files or as directories to search. A .proto alone is a
// gRPC contract (routes are not compared); each document is read with its size bounded
// and a malformed one is an error naming its file and line. rel, which may be nil, makes
// the positions of findings relative.
func LoadFiles(paths []string, rel func(string) string) (*Contract, error) {
	if rel == nil {
		rel = func(s string) string { return s }
	}
	var protos, oas []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			switch {
			case strings.HasSuffix(p, ".proto"):
				protos = append(protos, p)
			case strings.HasSuffix(p, ".json"):
				oas = append(oas, p)
			default:
				return nil, fmt.Errorf("%s: want a .proto or an .openapi.json document", rel(p))
			}
			continue
		}
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if q != p && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
					return filepath.SkipDir
				}
				return nil
			}
			switch {
			case strings.HasSuffix(q, ".proto"):
				protos = append(protos, q)
			case strings.HasSuffix(q, ".openapi.json"):
				oas = append(oas, q)
			}
			if len(protos)+len(oas) > maxFiles {
				return fmt.Errorf("%s: more than %d documents", rel(p), maxFiles)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(protos) == 0 {
		return nil, fmt.Errorf("%s: no .proto document", strings.Join(paths, ", "))
	}
	c := &Contract{Source: strings.Join(paths, ", "), HTTPKnown: len(oas) > 0}
	for _, p := range protos {
		src, err := readBounded(p)
		if err != nil {
			return nil, err
		}
		svcs, err := parseProto(rel(p), string(src))
		if err != nil {
			return nil, err
		}
		c.Services = append(c.Services, svcs...)
	}
	for _, p := range oas {
		src, err := readBounded(p)
		if err != nil {
			return nil, err
		}
		if err := applyOpenAPI(c, rel(p), src); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d a contract document may have", p, st.Size(), maxFileSize)
	}
	buf := make([]byte, st.Size())
	n, err := f.Read(buf)
	if err != nil && n != len(buf) {
		return nil, err
	}
	return buf[:n], nil
}

// applyOpenAPI sets the routes and auth of c's methods from an OpenAPI document that
// svckit gen wrote: its operationId is the interface prefix and the method name, its
// tag the Go interface.
func applyOpenAPI(c *Contract, file string, src []byte) error {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		return fmt.Errorf("%s: not an OpenAPI document: %w", file, err)
	}
	type op struct {
		OperationID string             `json:"operationId"`
		Tags        []string           `json:"tags"`
		Security    []map[string][]any `json:"security"`
	}
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for verb, raw := range doc.Paths[path] {
			v := strings.ToUpper(verb)
			if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}, v) {
				continue
			}
			var o op
			if err := json.Unmarshal(raw, &o); err != nil {
				return fmt.Errorf("%s: paths.%s.%s: %w", file, path, verb, err)
			}
			m := findOperation(c, o.OperationID, o.Tags)
			if m == nil {
				continue // an operation of no gRPC method: nothing to compare it with
			}
			m.Route = v + " " + path
			m.Auth = "public"
			for _, req := range o.Security {
				if roles, ok := req["bearer"]; ok {
					var rs []string
					for _, r := range roles {
						rs = append(rs, fmt.Sprint(r))
					}
					m.Auth = strings.TrimSpace("bearer " + strings.Join(rs, " "))
				}
			}
		}
	}
	return nil
}

// findOperation finds the method of an operationId: the method name after the
// interface's prefix (none for an interface named Service).
func findOperation(c *Contract, id string, tags []string) *Method {
	for _, tag := range tags {
		name := id
		if tag != "Service" {
			name = strings.TrimPrefix(id, tag)
		}
		for _, s := range c.Services {
			if s.GoName != "" && s.GoName != tag {
				continue
			}
			for _, m := range s.Methods {
				if m.Name == name {
					if s.GoName == "" {
						s.GoName = tag
					}
					return m
				}
			}
		}
	}
	return nil
}

// parseProto reads the services of a .proto file in the subset svckit gen writes
// (proto3; services, messages, scalar, optional, repeated and map fields, the
// well-known Timestamp and Duration). Anything else is an error naming the line.
func parseProto(file, src string) ([]*Service, error) {
	toks, err := tokenize(file, src)
	if err != nil {
		return nil, err
	}
	p := &protoParser{file: file, toks: toks, msgs: map[string]*Message{}}
	svcs, err := p.parse()
	if err != nil {
		return nil, err
	}
	// Resolve message references now that every message is known.
	for _, r := range p.refs {
		m := p.msgs[r.name]
		if m == nil {
			return nil, fmt.Errorf("%s:%d: unknown message %s", file, r.line, r.name)
		}
		*r.into = m
	}
	return svcs, nil
}

type tok struct {
	text string
	line int
}

func tokenize(file, src string) ([]tok, error) {
	var toks []tok
	line := 1
	for i := 0; i < len(src); {
		ch := src[i]
		switch {
		case ch == '\n':
			line++
			i++
		case ch == ' ' || ch == '\t' || ch == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: unterminated comment", file, line)
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
		case ch == '"' || ch == '\'':
			j := i + 1
			for j < len(src) && src[j] != ch && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			toks = append(toks, tok{src[i:min(j+1, len(src))], line})
			i = j + 1
		case isIdent(rune(ch)) || ch == '.':
			j := i
			for j < len(src) && (isIdent(rune(src[j])) || src[j] == '.') {
				j++
			}
			toks = append(toks, tok{src[i:j], line})
			i = j
		default:
			toks = append(toks, tok{string(ch), line})
			i++
		}
	}
	return toks, nil
}

func isIdent(r rune) bool { return r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) }

type msgRef struct {
	name string
	line int
	into **Message
}

type protoParser struct {
	file string
	toks []tok
	i    int
	pkg  string
	msgs map[string]*Message // by name relative to the package
	refs []msgRef
}

var errEOF = errors.New("unexpected end of file")

func (p *protoParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i].text
	}
	return ""
}

func (p *protoParser) line() int {
	if p.i < len(p.toks) {
		return p.toks[p.i].line
	}
	if len(p.toks) > 0 {
		return p.toks[len(p.toks)-1].line
	}
	return 1
}

func (p *protoParser) next() (tok, error) {
	if p.i >= len(p.toks) {
		return tok{}, fmt.Errorf("%s:%d: %w", p.file, p.line(), errEOF)
	}
	t := p.toks[p.i]
	p.i++
	return t, nil
}

func (p *protoParser) expect(s string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if t.text != s {
		return fmt.Errorf("%s:%d: want %q, found %q", p.file, t.line, s, t.text)
	}
	return nil
}

// skipStatement skips to the end of a statement: past its ; or its {...} block.
func (p *protoParser) skipStatement() error {
	depth := 0
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch t.text {
		case "{":
			depth++
		case "}":
			depth--
			if depth == 0 {
				return nil
			}
		case ";":
			if depth == 0 {
				return nil
			}
		}
	}
}

func (p *protoParser) parse() ([]*Service, error) {
	var svcs []*Service
	for p.i < len(p.toks) {
		t, _ := p.next()
		switch t.text {
		case "syntax":
			if err := p.expect("="); err != nil {
				return nil, err
			}
			v, err := p.next()
			if err != nil {
				return nil, err
			}
			if v.text != `"proto3"` {
				return nil, fmt.Errorf("%s:%d: syntax %s: only proto3 is compared", p.file, v.line, v.text)
			}
			if err := p.expect(";"); err != nil {
				return nil, err
			}
		case "package":
			v, err := p.next()
			if err != nil {
				return nil, err
			}
			p.pkg = v.text
			if err := p.expect(";"); err != nil {
				return nil, err
			}
		case "import", "option":
			if err := p.skipStatement(); err != nil {
				return nil, err
			}
		case "service":
			s, err := p.service(t.line)
			if err != nil {
				return nil, err
			}
			svcs = append(svcs, s)
		case "message":
			if err := p.message(t.line); err != nil {
				return nil, err
			}
		case ";":
		default:
			return nil, fmt.Errorf("%s:%d: %q is not compared (svckit's .proto subset: syntax, package, import, option, service, message)", p.file, t.line, t.text)
		}
	}
	return svcs, nil
}

func (p *protoParser) service(line int) (*Service, error) {
	name, err := p.next()
	if err != nil {
		return nil, err
	}
	full := name.text
	if p.pkg != "" {
		full = p.pkg + "." + name.text
	}
	s := &Service{GRPC: full, Pos: Pos{p.file, line}}
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t.text {
		case "}":
			return s, nil
		case "option":
			if err := p.skipStatement(); err != nil {
				return nil, err
			}
		case "rpc":
			m := &Method{Pos: Pos{p.file, t.line}}
			n, err := p.next()
			if err != nil {
				return nil, err
			}
			m.Name = n.text
			if _, err := p.rpcType(&m.Req); err != nil {
				return nil, err
			}
			if err := p.expect("returns"); err != nil {
				return nil, err
			}
			stream, err := p.rpcType(&m.Resp)
			if err != nil {
				return nil, err
			}
			m.Stream = stream
			if p.peek() == "{" {
				if err := p.skipBlock(); err != nil {
					return nil, err
				}
			} else if err := p.expect(";"); err != nil {
				return nil, err
			}
			s.Methods = append(s.Methods, m)
		default:
			return nil, fmt.Errorf("%s:%d: unexpected %q in service %s", p.file, t.line, t.text, s.GRPC)
		}
	}
}

func (p *protoParser) skipBlock() error {
	if err := p.expect("{"); err != nil {
		return err
	}
	for depth := 1; depth > 0; {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch t.text {
		case "{":
			depth++
		case "}":
			depth--
		}
	}
	return nil
}

// rpcType reads "( [stream] Type )" and records the message reference.
func (p *protoParser) rpcType(into **Message) (stream bool, err error) {
	if err := p.expect("("); err != nil {
		return false, err
	}
	t, err := p.next()
	if err != nil {
		return false, err
	}
	if t.text == "stream" {
		stream = true
		if t, err = p.next(); err != nil {
			return false, err
		}
	}
	p.refs = append(p.refs, msgRef{p.relName(t.text), t.line, into})
	return stream, p.expect(")")
}

// relName is a type name relative to the file's package.
func (p *protoParser) relName(n string) string {
	n = strings.TrimPrefix(n, ".")
	if p.pkg != "" {
		n = strings.TrimPrefix(n, p.pkg+".")
	}
	return n
}

var protoScalars = map[string]bool{
	"double": true, "float": true, "int32": true, "int64": true, "uint32": true, "uint64": true,
	"sint32": true, "sint64": true, "fixed32": true, "fixed64": true, "sfixed32": true, "sfixed64": true,
	"bool": true, "string": true, "bytes": true,
}

// fieldType reads a type name: a scalar, a well-known type or a message.
func (p *protoParser) fieldType(t tok) *Type {
	n := strings.TrimPrefix(t.text, ".")
	switch {
	case protoScalars[n]:
		return &Type{Scalar: n}
	case n == "google.protobuf.Timestamp" || n == "google.protobuf.Duration":
		return &Type{Scalar: n}
	}
	ty := &Type{}
	p.refs = append(p.refs, msgRef{p.relName(t.text), t.line, &ty.Msg})
	return ty
}

func (p *protoParser) message(line int) error {
	name, err := p.next()
	if err != nil {
		return err
	}
	m := &Message{Name: name.text, Pos: Pos{p.file, line}}
	if p.msgs[m.Name] != nil {
		return fmt.Errorf("%s:%d: message %s declared twice", p.file, line, m.Name)
	}
	p.msgs[m.Name] = m
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		f := &Field{Pos: Pos{p.file, t.line}}
		switch t.text {
		case "}":
			return nil
		case "option", "reserved":
			if err := p.skipStatement(); err != nil {
				return err
			}
			continue
		case "optional", "repeated":
			ty, err := p.next()
			if err != nil {
				return err
			}
			ft := p.fieldType(ty)
			if t.text == "optional" {
				ft.Optional = ft.Scalar != "" && !strings.HasPrefix(ft.Scalar, "google.protobuf.")
				f.Type = ft
			} else {
				f.Type = &Type{List: ft}
			}
		case "map":
			if err := p.expect("<"); err != nil {
				return err
			}
			if _, err := p.next(); err != nil { // the key: always string in svckit's contracts
				return err
			}
			if err := p.expect(","); err != nil {
				return err
			}
			v, err := p.next()
			if err != nil {
				return err
			}
			if err := p.expect(">"); err != nil {
				return err
			}
			f.Type = &Type{Map: p.fieldType(v)}
		case "message", "enum", "oneof", "extensions", "extend":
			return fmt.Errorf("%s:%d: %s inside message %s is not compared (svckit gen writes none)", p.file, t.line, t.text, m.Name)
		default:
			f.Type = p.fieldType(t)
		}
		fname, err := p.next()
		if err != nil {
			return err
		}
		f.Name = fname.text
		f.JSON = protocJSONName(f.Name)
		if err := p.expect("="); err != nil {
			return err
		}
		num, err := p.next()
		if err != nil {
			return err
		}
		f.Number, err = strconv.Atoi(num.text)
		if err != nil || f.Number <= 0 {
			return fmt.Errorf("%s:%d: field %s: bad number %q", p.file, num.line, f.Name, num.text)
		}
		if p.peek() == "[" {
			if err := p.fieldOptions(f); err != nil {
				return err
			}
		}
		if err := p.expect(";"); err != nil {
			return err
		}
		m.Fields = append(m.Fields, f)
	}
}

// fieldOptions reads [name = value, ...], keeping json_name.
func (p *protoParser) fieldOptions(f *Field) error {
	if err := p.expect("["); err != nil {
		return err
	}
	for {
		k, err := p.next()
		if err != nil {
			return err
		}
		if err := p.expect("="); err != nil {
			return err
		}
		v, err := p.next()
		if err != nil {
			return err
		}
		if k.text == "json_name" {
			s, err := strconv.Unquote(v.text)
			if err != nil {
				return fmt.Errorf("%s:%d: json_name %s: %w", p.file, v.line, v.text, err)
			}
			f.JSON = s
		}
		t, err := p.next()
		if err != nil {
			return err
		}
		switch t.text {
		case "]":
			return nil
		case ",":
		default:
			return fmt.Errorf("%s:%d: want , or ] in field options, found %q", p.file, t.line, t.text)
		}
	}
}

// protocJSONName is protoc's default json_name: underscores dropped and the letter after
// each capitalised.
func protocJSONName(name string) string {
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
