package gen

import (
	"bytes"
	"encoding/json"
	"go/types"
	"strconv"
	"strings"
)

// obj is a JSON object that keeps its keys in insertion order, so the document is
// deterministic and reads in the order of the source.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) set(k string, v any) obj {
	for i := range o {
		if o[i].k == k {
			o[i].v = v
			return o
		}
	}
	return append(o, kv{k, v})
}

func (o obj) get(k string) any {
	for _, e := range o {
		if e.k == k {
			return e.v
		}
	}
	return nil
}

// MarshalJSON writes the members in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// openAPI returns the OpenAPI 3.1 document of the package's HTTP routes.
func openAPI(pkg *Package) ([]byte, error) {
	var descs []string
	for _, s := range pkg.Services {
		if s.Doc != "" {
			descs = append(descs, s.Doc)
		}
	}
	info := obj{{"title", pkg.Name}, {"version", "0.0.0"}}
	if len(descs) > 0 {
		info = info.set("description", strings.Join(descs, "\n\n"))
	}
	info = info.set("x-svckit", header)
	paths := obj{}
	schemas := obj{}
	streamItems := map[*Message]bool{}
	for _, s := range pkg.Services {
		for _, m := range s.Methods {
			if m.Stream != nil && !m.RespUser {
				streamItems[m.Resp] = true
			}
		}
	}
	for _, m := range pkg.Messages {
		if streamItems[m] {
			continue
		}
		schemas = schemas.set(m.Name, messageSchema(m))
	}
	schemas = schemas.set("Problem", problemSchema())
	var tags []any
	for _, s := range pkg.Services {
		t := obj{{"name", s.Name}}
		if s.Doc != "" {
			t = t.set("description", s.Doc)
		}
		tags = append(tags, t)
		for _, m := range s.Methods {
			if m.HTTPMethod == "" {
				continue
			}
			p := openAPIPath(m.HTTPPath)
			item, _ := paths.get(p).(obj)
			paths = paths.set(p, item.set(strings.ToLower(m.HTTPMethod), operation(s, m)))
		}
	}
	doc := obj{
		{"openapi", "3.1.0"},
		{"info", info},
		{"tags", tags},
		{"paths", paths},
		{"components", obj{{"schemas", schemas}}},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// openAPIPath turns a Go route pattern into an OpenAPI path template.
func openAPIPath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return strings.ReplaceAll(p, "...}", "}")
}

func ref(name string) obj { return obj{{"$ref", "#/components/schemas/" + name}} }

func operation(s *Service, m *Method) obj {
	op := obj{{"operationId", s.Prefix + m.Name}, {"tags", []string{s.Name}}}
	if m.Doc != "" {
		summary, _, _ := strings.Cut(m.Doc, "\n\n")
		summary, _, _ = strings.Cut(summary, ". ")
		op = op.set("summary", strings.ReplaceAll(strings.TrimSuffix(summary, "."), "\n", " "))
		op = op.set("description", m.Doc)
	}
	var params []any
	for _, f := range m.PathFields {
		params = append(params, obj{{"name", pathName(m.HTTPPath, f)}, {"in", "path"}, {"required", true}, {"schema", typeSchema(f.Type)}})
	}
	for _, f := range m.QueryField {
		sch := typeSchema(f.Type)
		if f.Type.Kind == KindPointer {
			sch = typeSchema(f.Type.Elem)
		}
		p := obj{{"name", f.JSONName}, {"in", "query"}, {"schema", sch}}
		if f.Doc != "" {
			p = p.set("description", f.Doc)
		}
		params = append(params, p)
	}
	if len(params) > 0 {
		op = op.set("parameters", params)
	}
	switch m.HTTPMethod {
	case "POST", "PUT", "PATCH":
		op = op.set("requestBody", obj{{"required", false}, {"content", obj{{"application/json", obj{{"schema", ref(m.Req.Name)}}}}}})
	}
	var resp any = ref(m.Resp.Name)
	if m.RespPtr {
		resp = obj{{"anyOf", []any{ref(m.Resp.Name), obj{{"type", "null"}}}}}
	}
	op = op.set("responses", obj{
		{"200", obj{{"description", "OK"}, {"content", obj{{"application/json", obj{{"schema", resp}}}}}}},
		{"default", obj{{"description", "An error, as RFC 9457 problem details."},
			{"content", obj{{"application/problem+json", obj{{"schema", ref("Problem")}}}}}}},
	})
	return op
}

func messageSchema(m *Message) obj {
	s := obj{{"type", "object"}}
	if m.Doc != "" {
		s = s.set("description", m.Doc)
	}
	props := obj{}
	for _, f := range m.Fields {
		fs := typeSchema(f.Type)
		if f.Doc != "" {
			fs = fs.set("description", f.Doc)
		}
		props = props.set(f.JSONName, fs)
	}
	return s.set("properties", props)
}

// typeSchema is the JSON Schema (2020-12) of a Go type as encoding/json writes it.
func typeSchema(t *Type) obj {
	switch t.Kind {
	case KindBasic:
		return basicSchema(t)
	case KindBytes:
		return obj{{"type", []string{"string", "null"}}, {"contentEncoding", "base64"}}
	case KindTime:
		return obj{{"type", "string"}, {"format", "date-time"}}
	case KindDuration:
		return obj{{"type", "integer"}, {"format", "int64"}, {"description", "a duration in nanoseconds"}}
	case KindStruct:
		return ref(t.Msg.Name)
	case KindPointer:
		if t.Elem.Kind == KindStruct {
			return obj{{"anyOf", []any{ref(t.Elem.Msg.Name), obj{{"type", "null"}}}}}
		}
		s := typeSchema(t.Elem)
		if ty, ok := s.get("type").(string); ok {
			s = s.set("type", []string{ty, "null"})
		}
		if e, ok := s.get("enum").([]any); ok {
			s = s.set("enum", append(e, nil))
		}
		return s
	case KindSlice:
		return obj{{"type", []string{"array", "null"}}, {"items", typeSchema(t.Elem)}}
	case KindMap:
		return obj{{"type", []string{"object", "null"}}, {"additionalProperties", typeSchema(t.Elem)}}
	}
	return obj{}
}

func basicSchema(t *Type) obj {
	b := t.Basic
	var s obj
	switch {
	case b.Kind() == types.Bool:
		s = obj{{"type", "boolean"}}
	case b.Info()&types.IsString != 0:
		s = obj{{"type", "string"}}
	case b.Info()&types.IsInteger != 0:
		s = obj{{"type", "integer"}}
		switch b.Kind() {
		case types.Int32:
			s = s.set("format", "int32")
		case types.Int, types.Int64:
			s = s.set("format", "int64")
		case types.Int8:
			s = s.set("minimum", -128).set("maximum", 127)
		case types.Int16:
			s = s.set("minimum", -32768).set("maximum", 32767)
		case types.Uint8:
			s = s.set("minimum", 0).set("maximum", 255)
		case types.Uint16:
			s = s.set("minimum", 0).set("maximum", 65535)
		case types.Uint32:
			s = s.set("minimum", 0).set("maximum", uint64(4294967295))
		default:
			s = s.set("minimum", 0)
		}
	default:
		s = obj{{"type", "number"}}
		if b.Kind() == types.Float32 {
			s = s.set("format", "float")
		} else {
			s = s.set("format", "double")
		}
	}
	if t.Enum != nil {
		// The zero value is on the wire whenever a field is not set, so it is a member
		// even when no constant names it.
		var vals []any
		zero := false
		for _, v := range t.Enum.Values {
			if uq, err := strconv.Unquote(v.Value); err == nil {
				vals = append(vals, uq)
				zero = zero || uq == ""
			} else {
				vals = append(vals, json.Number(v.Value))
				zero = zero || v.Value == "0"
			}
		}
		if !zero {
			if b.Info()&types.IsString != 0 {
				vals = append(vals, "")
			} else {
				vals = append(vals, json.Number("0"))
			}
		}
		s = s.set("enum", vals)
	}
	return s
}

func problemSchema() obj {
	str := func(d string) obj { return obj{{"type", "string"}, {"description", d}} }
	return obj{
		{"type", "object"},
		{"description", "An error (RFC 9457 problem details, with svckit's kind)."},
		{"required", []string{"type", "title", "status", "kind"}},
		{"properties", obj{
			{"type", str("a URI reference that identifies the problem type")},
			{"title", str("the HTTP status text")},
			{"status", obj{{"type", "integer"}, {"description", "the HTTP status code"}}},
			{"detail", str("what went wrong, safe to show to the caller")},
			{"instance", str("the path of the request")},
			{"kind", obj{{"type", "string"}, {"description", "the svcerr kind"}, {"enum", []string{
				"unknown", "invalid_argument", "not_found", "already_exists", "failed_precondition", "aborted",
				"out_of_range", "unauthenticated", "permission_denied", "resource_exhausted", "canceled",
				"deadline_exceeded", "unimplemented", "unavailable", "internal", "data_loss"}}}},
			{"request_id", str("the request id, also in the X-Request-Id header")},
			{"errors", obj{{"type", "array"}, {"description", "the invalid fields of the request"}, {"items", obj{
				{"type", "object"},
				{"properties", obj{{"field", obj{{"type", "string"}}}, {"description", obj{{"type", "string"}}}}},
			}}}},
			{"meta", obj{{"type", "object"}, {"additionalProperties", obj{{"type", "string"}}}}},
		}},
	}
}
