package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// oaNames are the schema names of the document: a message's protobuf name unless that
// would collide with a type a common client generator derives from an operation (or with
// a fixed name of its runtime).
type oaNames map[*Message]string

// reservedByGenerators are type and function names that oapi-codegen's default client and
// models declare in every package; a schema of one of these names does not compile.
var reservedByGenerators = []string{"Client", "ClientInterface", "ClientOption", "ClientWithResponses",
	"ClientWithResponsesInterface", "HttpRequestDoer", "RequestEditorFn", "NewClient",
	"NewClientWithResponses", "WithBaseURL", "WithHTTPClient", "WithRequestEditorFn"}

// opDerivedNames lists the package-level names that client generators derive from an
// operation id: oapi-codegen writes <Op>Response, <Op>Params, <Op>JSONBody,
// <Op>JSONRequestBody, New<Op>Request[WithBody] and Parse<Op>Response.
func opDerivedNames(op string) []string {
	return []string{op + "Response", op + "Params", op + "JSONBody", op + "JSONRequestBody",
		"New" + op + "Request", "New" + op + "RequestWithBody", "Parse" + op + "Response"}
}

// openAPI returns the OpenAPI 3.1 document of the package's HTTP routes.
func openAPI(pkg *Package) ([]byte, error) {
	var descs []string
	for _, s := range pkg.Services {
		if s.Doc != "" {
			descs = append(descs, s.Doc)
		}
	}
	// Only the messages an HTTP operation reaches are schemas of the document: a
	// gRPC-only method's request, or a GET request whose fields are parameters, is not.
	reached := map[*Message]bool{}
	var reach func(t *Type)
	reachMsg := func(m *Message) {
		if reached[m] {
			return
		}
		reached[m] = true
		for _, f := range m.Fields {
			reach(f.Type)
		}
	}
	reach = func(t *Type) {
		switch t.Kind {
		case KindStruct:
			reachMsg(t.Msg)
		case KindPointer, KindSlice, KindMap:
			reach(t.Elem)
		}
	}
	reserved := map[string]bool{"Problem": true}
	for _, n := range reservedByGenerators {
		reserved[n] = true
	}
	auth, int64s := false, false
	for _, s := range pkg.Services {
		for _, m := range s.Methods {
			if m.HTTPMethod == "" {
				continue
			}
			if hasBody(m) {
				reachMsg(m.Req)
			}
			for _, f := range append(append([]*Field(nil), m.PathFields...), m.QueryField...) {
				reach(f.Type)
				int64s = int64s || isInt64(f.Type)
			}
			reachMsg(m.Resp)
			for _, n := range opDerivedNames(s.Prefix + m.Name) {
				reserved[n] = true
			}
			auth = auth || (m.Auth != nil && !m.Auth.Public)
		}
	}
	names := oaNames{}
	taken := map[string]bool{}
	for _, m := range pkg.Messages {
		if !reached[m] {
			continue
		}
		for _, f := range m.Fields {
			int64s = int64s || isInt64(f.Type)
		}
		name := m.Name
		for i := 1; reserved[name] || taken[name]; i++ {
			name = m.Name + "Body"
			if i > 1 {
				name += strconv.Itoa(i)
			}
		}
		names[m], taken[name] = name, true
	}
	info := obj{{"title", pkg.Name}, {"version", "0.0.0"}}
	if int64s {
		descs = append(descs, "64-bit integers (format int64, and durations in nanoseconds) are sent as JSON numbers, as encoding/json writes them; requests may send them as numbers or as the decimal strings protojson writes (at most 64 strings per request), which keeps a JavaScript client's values exact above 2^53.")
	}
	if len(descs) > 0 {
		info = info.set("description", strings.Join(descs, "\n\n"))
	}
	info = info.set("x-svckit", header)
	paths := obj{}
	schemas := obj{}
	for _, m := range pkg.Messages {
		if reached[m] {
			schemas = schemas.set(names[m], names.messageSchema(m))
		}
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
			paths = paths.set(p, item.set(strings.ToLower(m.HTTPMethod), names.operation(s, m)))
		}
	}
	components := obj{{"schemas", schemas}}
	if auth {
		components = components.set("securitySchemes", obj{{"bearer", obj{
			{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"},
			{"description", "A JWT in the Authorization header: Authorization: Bearer <token>."},
		}}})
	}
	doc := obj{
		{"openapi", "3.1.0"},
		{"info", info},
		{"servers", []any{obj{{"url", "/"}, {"description", "the service's HTTP address (the host that serves this document)"}}}},
		{"tags", tags},
		{"paths", paths},
		{"components", components},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// hasBody reports whether the method's request travels as a JSON body.
func hasBody(m *Method) bool {
	switch m.HTTPMethod {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

// isInt64 reports whether t carries 64-bit integers.
func isInt64(t *Type) bool {
	switch t.Kind {
	case KindBasic:
		switch t.Basic.Kind() {
		case types.Int, types.Int64, types.Uint, types.Uint64:
			return true
		}
	case KindDuration:
		return true
	case KindPointer, KindSlice, KindMap:
		return isInt64(t.Elem)
	}
	return false
}

// openAPIPath turns a Go route pattern into an OpenAPI path template.
func openAPIPath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return strings.ReplaceAll(p, "...}", "}")
}

func ref(name string) obj { return obj{{"$ref", "#/components/schemas/" + name}} }

// problemResponse is a response of problem details.
func problemResponse(desc string) obj {
	return obj{{"description", desc}, {"content", obj{{"application/problem+json", obj{{"schema", ref("Problem")}}}}}}
}

func (n oaNames) operation(s *Service, m *Method) obj {
	op := obj{{"operationId", s.Prefix + m.Name}, {"tags", []string{s.Name}}}
	if m.Doc != "" {
		summary, _, _ := strings.Cut(m.Doc, "\n\n")
		summary, _, _ = strings.Cut(summary, ". ")
		op = op.set("summary", strings.ReplaceAll(strings.TrimSuffix(summary, "."), "\n", " "))
		op = op.set("description", m.Doc)
	}
	var params []any
	for _, f := range m.PathFields {
		params = append(params, obj{{"name", pathName(m.HTTPPath, f)}, {"in", "path"}, {"required", true}, {"schema", n.typeSchema(f.Type)}})
	}
	for _, f := range m.QueryField {
		sch := n.typeSchema(f.Type)
		if f.Type.Kind == KindPointer {
			sch = n.typeSchema(f.Type.Elem)
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
	if hasBody(m) {
		op = op.set("requestBody", obj{{"required", false}, {"content", obj{{"application/json", obj{{"schema", ref(n[m.Req])}}}}}})
	}
	var resp any = ref(n[m.Resp])
	if m.RespPtr {
		resp = obj{{"anyOf", []any{ref(n[m.Resp]), obj{{"type", "null"}}}}}
	}
	responses := obj{
		{"200", obj{{"description", "OK"}, {"content", obj{{"application/json", obj{{"schema", resp}}}}}}},
		{"400", problemResponse("The request is malformed or invalid (kind invalid_argument).")},
	}
	switch {
	case m.Auth == nil || m.Auth.Public:
		// Without //svckit:auth a method is what a service without auth middleware
		// serves: public. (The generator cannot see the middleware main adds.)
		op = op.set("security", []any{})
	default:
		roles := m.Auth.Roles
		if roles == nil {
			roles = []string{}
		}
		op = op.set("security", []any{obj{{"bearer", roles}}})
		responses = responses.set("401", problemResponse("The bearer token is missing, expired or invalid (kind unauthenticated)."))
		forbidden := "The caller may not make this call (kind permission_denied)."
		if len(m.Auth.Roles) > 0 {
			forbidden = fmt.Sprintf("The token lacks a role or scope this call requires (%s; kind permission_denied).", strings.Join(m.Auth.Roles, ", "))
		}
		responses = responses.set("403", problemResponse(forbidden))
	}
	responses = responses.set("default", problemResponse("An error, as RFC 9457 problem details."))
	return op.set("responses", responses)
}

func (n oaNames) messageSchema(m *Message) obj {
	s := obj{{"type", "object"}}
	if m.Doc != "" {
		s = s.set("description", m.Doc)
	}
	props := obj{}
	for _, f := range m.Fields {
		fs := n.typeSchema(f.Type)
		if f.Doc != "" {
			fs = fs.set("description", f.Doc)
		}
		props = props.set(f.JSONName, fs)
	}
	return s.set("properties", props)
}

// typeSchema is the JSON Schema (2020-12) of a Go type as encoding/json writes it.
func (n oaNames) typeSchema(t *Type) obj {
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
		return ref(n[t.Msg])
	case KindPointer:
		if t.Elem.Kind == KindStruct {
			return obj{{"anyOf", []any{ref(n[t.Elem.Msg]), obj{{"type", "null"}}}}}
		}
		s := n.typeSchema(t.Elem)
		if ty, ok := s.get("type").(string); ok {
			s = s.set("type", []string{ty, "null"})
		}
		if e, ok := s.get("enum").([]any); ok {
			s = s.set("enum", append(e, nil))
		}
		return s
	case KindSlice:
		return obj{{"type", []string{"array", "null"}}, {"items", n.typeSchema(t.Elem)}}
	case KindMap:
		return obj{{"type", []string{"object", "null"}}, {"additionalProperties", n.typeSchema(t.Elem)}}
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
