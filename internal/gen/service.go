package gen

import (
	"fmt"
	"go/types"
	"strings"
)

// svcGen writes the Go file of one service: request and response types, endpoints,
// HTTP and gRPC transports, clients and Serve.
type svcGen struct {
	g      *goFile
	pkg    *Package
	s      *Service
	c      *conv // writes into this service's file
	shared *conv // writes helpers into the package's shared file
}

func (w *svcGen) x(name string) string { return w.s.Prefix + name }

// reqType and respType are the endpoint's request and response types.
func (w *svcGen) reqType(m *Method) string {
	if m.ReqUser {
		return w.g.typ(m.Req.Go)
	}
	return m.Req.GoName
}

func (w *svcGen) respType(m *Method) string {
	if m.Stream != nil {
		return w.g.q("iter", "") + "Seq2[" + w.g.typ(m.Stream.Go) + ", error]"
	}
	if m.RespUser {
		t := w.g.typ(m.Resp.Go)
		if m.RespPtr {
			t = "*" + t
		}
		return t
	}
	return m.Resp.GoName
}

// label is the service name clients report to middleware.
func (w *svcGen) label() string {
	if w.s.Prefix == "" {
		return w.pkg.Name
	}
	return w.pkg.Name + "." + w.s.Name
}

func (w *svcGen) generate() {
	w.wrappers()
	w.endpoints()
	w.client()
	w.httpServer()
	w.httpClient()
	w.grpc()
	w.nats()
	w.serve()
}

func (w *svcGen) wrappers() {
	for _, m := range w.s.Methods {
		for _, msg := range []*Message{m.Req, m.Resp} {
			if !msg.Wrapper || (msg == m.Resp && m.Stream != nil) {
				continue
			}
			w.g.comment("", msg.Doc)
			if len(msg.Fields) == 0 {
				w.g.p("type %s struct{}\n", msg.GoName)
				continue
			}
			w.g.p("type %s struct {", msg.GoName)
			for _, f := range msg.Fields {
				w.g.p("\t%s %s `json:\"%s\"`", f.GoName, w.g.typ(f.Type.Go), f.JSONName)
			}
			w.g.p("}\n")
		}
		w.binding(m)
	}
}

func (w *svcGen) endpoints() {
	g := w.g
	g.docf("%s holds one typed endpoint per method of %s. Transports serve them, clients build them, middleware wraps them.", w.x("Endpoints"), w.s.Name)
	g.p("type %s struct {", w.x("Endpoints"))
	for _, m := range w.s.Methods {
		g.comment("\t", m.Doc)
		g.p("\t%s %sEndpoint[%s, %s]", m.Name, g.ep(), w.reqType(m), w.respType(m))
	}
	g.p("}\n")
	g.p("// Make%s adapts a %s to %s.", w.x("Endpoints"), w.s.Name, w.x("Endpoints"))
	g.p("func Make%s(s %s) %s {", w.x("Endpoints"), w.s.Name, w.x("Endpoints"))
	g.p("\treturn %s{", w.x("Endpoints"))
	for _, m := range w.s.Methods {
		g.p("\t\t%s: func(ctx %s, req %s) (%s, error) {", m.Name, g.ctx(), w.reqType(m), w.respType(m))
		var args []string
		if m.ReqUser {
			a := "req"
			if m.ReqPtr {
				a = "&req"
			}
			args = append(args, a)
		} else {
			for _, p := range m.Params {
				args = append(args, "req."+p.Field.GoName)
			}
		}
		call := fmt.Sprintf("s.%s(%s)", m.Name, strings.Join(append([]string{"ctx"}, args...), ", "))
		switch {
		case m.Stream != nil || m.RespUser:
			g.p("\t\t\treturn %s", call)
		case len(m.Results) == 0:
			g.p("\t\t\terr := %s", call)
			g.p("\t\t\treturn %s{}, err", m.Resp.GoName)
		default:
			var vars, fields []string
			for i, r := range m.Results {
				v := fmt.Sprintf("r%d", i)
				if len(m.Results) == 1 {
					v = "v"
				}
				vars = append(vars, v)
				fields = append(fields, r.Field.GoName+": "+v)
			}
			g.p("\t\t\t%s, err := %s", strings.Join(vars, ", "), call)
			g.p("\t\t\treturn %s{%s}, err", m.Resp.GoName, strings.Join(fields, ", "))
		}
		g.p("\t\t},")
	}
	g.p("\t}")
	g.p("}\n")
}

// client writes the type that implements the interface on top of Endpoints.
func (w *svcGen) client() {
	g := w.g
	name := w.x("Client")
	g.docf("%s is a %s that calls another through %s: the same interface, served locally or remotely. Build the endpoints with New%sHTTPClient, New%sGRPCClient or New%sNATSClient.", name, w.s.Name, w.x("Endpoints"), w.s.Prefix, w.s.Prefix, w.s.Prefix)
	g.p("type %s struct {\n\te %s\n}\n", name, w.x("Endpoints"))
	g.p("// New%s returns a %s that calls e.", name, w.s.Name)
	g.p("func New%s(e %s) *%s { return &%s{e: e} }\n", name, w.x("Endpoints"), name, name)
	g.p("var _ %s = (*%s)(nil)\n", w.s.Name, name)
	for _, m := range w.s.Methods {
		var params, results []string
		params = append(params, "ctx "+g.ctx())
		var req string
		if m.ReqUser {
			pt := g.typ(m.Req.Go)
			if m.ReqPtr {
				pt = "*" + pt
				req = fmt.Sprintf("nonNil(req)")
				w.c.nonNil()
			} else {
				req = "req"
			}
			params = append(params, "req "+pt)
		} else {
			var fields []string
			for i, p := range m.Params {
				n := p.Name
				switch n {
				case "":
					n = fmt.Sprintf("arg%d", i+1)
				case "c", "ctx", "resp", "err":
					n += "Arg"
				}
				params = append(params, n+" "+g.typ(p.Field.Type.Go))
				fields = append(fields, p.Field.GoName+": "+n)
			}
			req = m.Req.GoName + "{" + strings.Join(fields, ", ") + "}"
		}
		switch {
		case m.Stream != nil || m.RespUser:
			results = append(results, w.respType(m))
		default:
			for _, r := range m.Results {
				results = append(results, g.typ(r.Field.Type.Go))
			}
		}
		results = append(results, "error")
		rs := strings.Join(results, ", ")
		if len(results) > 1 {
			rs = "(" + rs + ")"
		}
		g.comment("", m.Doc)
		g.p("func (c *%s) %s(%s) %s {", name, m.Name, strings.Join(params, ", "), rs)
		switch {
		case m.Stream != nil || m.RespUser:
			g.p("\treturn c.e.%s(ctx, %s)", m.Name, req)
		case len(m.Results) == 0:
			g.p("\t_, err := c.e.%s(ctx, %s)", m.Name, req)
			g.p("\treturn err")
		default:
			g.p("\tresp, err := c.e.%s(ctx, %s)", m.Name, req)
			var outs []string
			for _, r := range m.Results {
				outs = append(outs, "resp."+r.Field.GoName)
			}
			g.p("\treturn %s, err", strings.Join(outs, ", "))
		}
		g.p("}\n")
	}
}

func (w *svcGen) httpMethods() []*Method {
	var ms []*Method
	for _, m := range w.s.Methods {
		if m.HTTPMethod != "" {
			ms = append(ms, m)
		}
	}
	return ms
}

func (w *svcGen) httpServer() {
	g := w.g
	ms := w.httpMethods()
	g.p("// Register%sHTTP serves the endpoints over HTTP with JSON bodies:", w.s.Prefix)
	g.p("//")
	width := 0
	for _, m := range ms {
		width = max(width, len(m.HTTPMethod)+1+len(m.HTTPPath))
	}
	for _, m := range ms {
		g.p("//\t%-*s  %s", width, m.HTTPMethod+" "+m.HTTPPath, m.Name)
	}
	for _, m := range w.s.Methods {
		if m.HTTPMethod == "" {
			g.p("//")
			g.p("// %s is not served over HTTP.", m.Name)
		}
	}
	g.p("func Register%sHTTP(s *%sServer, e %s) {", w.s.Prefix, g.shttp(), w.x("Endpoints"))
	for _, m := range ms {
		opt := ""
		if m.Idempotent {
			opt = ", " + g.shttp() + "Idempotent()"
		}
		g.p("\t%sHandle(s, %q, %q, e.%s%s)", g.shttp(), m.HTTPMethod+" "+m.HTTPPath, m.Name, m.Name, opt)
	}
	g.p("}\n")
}

func (w *svcGen) httpClient() {
	g := w.g
	var notServed []string
	for _, m := range w.s.Methods {
		if m.HTTPMethod == "" {
			notServed = append(notServed, m.Name)
		}
	}
	doc := fmt.Sprintf("New%sHTTPClient returns %s that call the service at baseURL, such as \"http://127.0.0.1:8080\", over HTTP.", w.s.Prefix, w.x("Endpoints"))
	switch len(notServed) {
	case 0:
	case 1:
		doc += fmt.Sprintf(" %s is not served over HTTP; its endpoint fails with svcerr.Unimplemented.", notServed[0])
	default:
		doc += fmt.Sprintf(" %s are not served over HTTP; their endpoints fail with svcerr.Unimplemented.", strings.Join(notServed, ", "))
	}
	g.docf("%s", doc)
	g.p("func New%sHTTPClient(baseURL string, opts ...%sClientOption) (%s, error) {", w.s.Prefix, g.shttp(), w.x("Endpoints"))
	g.p("\tc, err := %sNewClient(baseURL, %q, opts...)", g.shttp(), w.label())
	g.p("\tif err != nil {\n\t\treturn %s{}, err\n\t}", w.x("Endpoints"))
	g.p("\treturn %s{", w.x("Endpoints"))
	for _, m := range w.s.Methods {
		if m.HTTPMethod == "" {
			g.p("\t\t%s: func(%s, %s) (resp %s, err error) {", m.Name, g.ctx(), w.reqType(m), w.respType(m))
			g.p("\t\t\treturn resp, %sNew(%sUnimplemented, %q)", g.svcerr(), g.svcerr(), w.s.Name+"."+m.Name+" is served over gRPC only")
			g.p("\t\t},")
			continue
		}
		g.p("\t\t%s: %sCall[%s, %s](c, %q, %q),", m.Name, g.shttp(), w.reqType(m), w.respType(m), m.HTTPMethod+" "+m.HTTPPath, m.Name)
	}
	g.p("\t}, nil")
	g.p("}\n")
}

func (w *svcGen) grpc() {
	g := w.g
	g.p("// %s is the full name of the gRPC service of %s.", w.x("GRPCService"), w.s.Name)
	g.p("const %s = %q\n", w.x("GRPCService"), w.s.GRPCName)
	g.docf("Register%sGRPC serves the endpoints as the gRPC service %s, and hands s the service's .proto with its doc comments, which gRPC reflection serves.", w.s.Prefix, w.s.GRPCName)
	g.p("func Register%sGRPC(s *%sServer, e %s) {", w.s.Prefix, g.sgrpc(), w.x("Endpoints"))
	g.p("\t%s", pbDocsCall(g))
	for _, m := range w.s.Methods {
		dec, enc := w.decodeReq(m), w.encodeResp(m)
		fn := "Unary"
		if m.Stream != nil {
			fn = "ServerStream"
		}
		g.p("\t%s%s(s, %q, e.%s, %s, %s)", g.sgrpc(), fn, m.Name, m.Name, dec, enc)
	}
	g.p("}\n")
	g.p("// New%sGRPCClient returns %s that call the gRPC service %s over cc.", w.s.Prefix, w.x("Endpoints"), w.s.GRPCName)
	g.p("func New%sGRPCClient(cc %sClientConnInterface, opts ...%sClientOption) %s {", w.s.Prefix,
		g.q("google.golang.org/grpc", ""), g.sgrpc(), w.x("Endpoints"))
	g.p("\tc := %sNewClient(cc, %s, opts...)", g.sgrpc(), w.x("GRPCService"))
	g.p("\treturn %s{", w.x("Endpoints"))
	for _, m := range w.s.Methods {
		fn := "UnaryCall"
		if m.Stream != nil {
			fn = "StreamCall"
		}
		g.p("\t\t%s: %s%s(c, %q, %s, %s),", m.Name, g.sgrpc(), fn, m.Name, w.encodeReq(m), w.decodeResp(m))
	}
	g.p("\t}")
	g.p("}\n")
}

// The four converters of a method, in the func(A) (B, error) form transport/grpc takes.
func (w *svcGen) decodeReq(m *Method) string { return w.lift(fromPBName(m.Req)) }
func (w *svcGen) encodeReq(m *Method) string { return w.lift(toPBName(m.Req)) }

func (w *svcGen) encodeResp(m *Method) string {
	if m.RespPtr {
		return w.lift(strings.TrimSuffix(w.shared.toPB(w.ptrResp(m), "x"), "(x)"))
	}
	return w.lift(toPBName(m.Resp))
}

func (w *svcGen) decodeResp(m *Method) string {
	if m.RespPtr {
		return w.lift(strings.TrimSuffix(w.shared.fromPB(w.ptrResp(m), "x"), "(x)"))
	}
	return w.lift(fromPBName(m.Resp))
}

// ptrResp is the type of a pointer response or stream item. Its conversions are helpers
// of the shared file (a nil response is sent as an empty message).
func (w *svcGen) ptrResp(m *Method) *Type {
	elem := &Type{Kind: KindStruct, Go: m.Resp.Go, Msg: m.Resp}
	return &Type{Kind: KindPointer, Go: types.NewPointer(m.Resp.Go), Elem: elem}
}

func (w *svcGen) lift(f string) string {
	w.g.helper("lift", `// lift adapts a conversion that cannot fail to the form transport/grpc takes.
func lift[A, B any](f func(A) B) func(A) (B, error) {
	return func(a A) (B, error) { return f(a), nil }
}`)
	return "lift(" + f + ")"
}

func (w *svcGen) serve() {
	g := w.g
	app := g.q("github.com/svckit/svckit", "svckit")
	g.docf("Serve%s serves svc on app over HTTP (Register%sHTTP) and gRPC (Register%sGRPC), with app's middleware: tracing, access log, metrics, timeout and panic recovery.", w.s.Prefix, w.s.Prefix, w.s.Prefix)
	g.p("func Serve%s(app *%sApp, svc %s) error {", w.s.Prefix, app, w.s.Name)
	g.p("\te := Make%s(svc)", w.x("Endpoints"))
	g.p("\tRegister%sHTTP(app.HTTP(), e)", w.s.Prefix)
	g.p("\tRegister%sGRPC(app.GRPC(%s), e)", w.s.Prefix, w.x("GRPCService"))
	g.p("\treturn nil")
	g.p("}")
}

// binding writes BindRequest and PathParam for a request bound from the URL.
func (w *svcGen) binding(m *Method) {
	if len(m.PathFields)+len(m.QueryField) == 0 {
		return
	}
	g := w.g
	recv := m.Req.GoName
	if !m.Req.Wrapper {
		recv = g.typ(m.Req.Go)
	}
	route := m.HTTPMethod + " " + m.HTTPPath
	if !m.Req.binder {
		g.p("// BindRequest sets the fields that %s carries in its URL.", route)
		g.p("func (r *%s) BindRequest(hr *%sRequest) error {", recv, g.q("net/http", ""))
		for _, f := range m.PathFields {
			name := pathName(m.HTTPPath, f)
			g.p("\tif s := hr.PathValue(%q); s != \"\" {", name)
			g.p("%s", indent(w.parse(f.Type, "s", "r."+f.GoName, name), "\t\t"))
			g.p("\t}")
		}
		if len(m.QueryField) > 0 {
			g.p("\tq := hr.URL.Query()")
			for _, f := range m.QueryField {
				name := f.JSONName
				if f.Type.Kind == KindSlice {
					g.p("\tfor _, s := range q[%q] {", name)
					g.p("\t\tvar v %s", g.typ(f.Type.Elem.Go))
					g.p("%s", indent(w.parse(f.Type.Elem, "s", "v", name), "\t\t"))
					g.p("\t\tr.%s = append(r.%s, v)", f.GoName, f.GoName)
					g.p("\t}")
					continue
				}
				g.p("\tif s := q.Get(%q); s != \"\" {", name)
				if f.Type.Kind == KindPointer {
					g.p("\t\tvar v %s", g.typ(f.Type.Elem.Go))
					g.p("%s", indent(w.parse(f.Type.Elem, "s", "v", name), "\t\t"))
					g.p("\t\tr.%s = &v", f.GoName)
				} else {
					g.p("%s", indent(w.parse(f.Type, "s", "r."+f.GoName, name), "\t\t"))
				}
				g.p("\t}")
			}
		}
		g.p("\treturn nil")
		g.p("}\n")
	}
	if len(m.QueryField) > 0 && !m.Req.querier {
		w.urlQuery(m, recv, route)
	}
	if len(m.PathFields) > 0 && !m.Req.pather {
		g.p("// PathParam returns the value of a wildcard of %s.", route)
		g.p("func (r *%s) PathParam(name string) string {", recv)
		g.p("\tswitch name {")
		for _, f := range m.PathFields {
			g.p("\tcase %q:", pathName(m.HTTPPath, f))
			g.p("\t\treturn %s", w.format(f.Type, "r."+f.GoName))
		}
		g.p("\t}")
		g.p("\treturn \"\"")
		g.p("}\n")
	}
}

// urlQuery writes URLQuery, which encodes the query fields for clients.
func (w *svcGen) urlQuery(m *Method, recv, route string) {
	g := w.g
	uv := g.q("net/url", "") + "Values"
	g.docf("URLQuery returns the fields that %s carries in its query string; fields with their zero value are left out.", route)
	g.p("func (r *%s) URLQuery() %s {", recv, uv)
	g.p("\tq := make(%s, %d)", uv, len(m.QueryField))
	for _, f := range m.QueryField {
		name, v := f.JSONName, "r."+f.GoName
		switch f.Type.Kind {
		case KindSlice:
			g.p("\tfor _, v := range %s {", v)
			g.p("\t\tq.Add(%q, %s)", name, w.formatAny(f.Type.Elem, "v"))
			g.p("\t}")
		case KindPointer:
			g.p("\tif %s != nil {", v)
			g.p("\t\tq.Set(%q, %s)", name, w.formatAny(f.Type.Elem, "*"+v))
			g.p("\t}")
		default:
			g.p("\tif %s {", w.nonZero(f.Type, v))
			g.p("\t\tq.Set(%q, %s)", name, w.formatAny(f.Type, v))
			g.p("\t}")
		}
	}
	g.p("\treturn q")
	g.p("}\n")
}

// formatAny formats a query value of type t.
func (w *svcGen) formatAny(t *Type, v string) string {
	switch t.Kind {
	case KindTime:
		return v + ".Format(" + w.g.q("time", "") + "RFC3339Nano)"
	case KindDuration:
		return v + ".String()"
	}
	return w.format(t, v)
}

// nonZero is a condition that holds when v, of type t, is not its zero value.
func (w *svcGen) nonZero(t *Type, v string) string {
	switch {
	case t.Kind == KindTime:
		return "!" + v + ".IsZero()"
	case t.Kind == KindDuration:
		return v + " != 0"
	case t.Basic.Kind() == types.Bool:
		return v
	case t.Basic.Info()&types.IsString != 0:
		return v + ` != ""`
	}
	return v + " != 0"
}

// pathName is the wildcard of path bound to f.
func pathName(path string, f *Field) string {
	rest := path
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			return f.JSONName
		}
		j := strings.IndexByte(rest[i:], '}')
		name := strings.TrimSuffix(rest[i+1:i+j], "...")
		rest = rest[i+j+1:]
		if name == f.JSONName || strings.EqualFold(name, f.GoName) {
			return name
		}
	}
}

func indent(s, in string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = in + l
	}
	return strings.Join(lines, "\n")
}

// parse returns statements that parse the string src into dst, of type t, returning an
// InvalidArgument error naming the parameter on failure.
func (w *svcGen) parse(t *Type, src, dst, name string) string {
	g := w.g
	conv := func(v string) string {
		if t.Named || t.Basic == nil || t.Basic.Name() != basicOfParse(t) {
			return g.typ(t.Go) + "(" + v + ")"
		}
		return v
	}
	fail := func(what string) string {
		return fmt.Sprintf("if err != nil {\n\treturn %sInvalid(%q, %q)\n}", g.svcerr(), name, "must be "+what)
	}
	sc := ""
	if t.Kind == KindBasic && t.Basic.Info()&types.IsString == 0 {
		sc = g.q("strconv", "")
	}
	switch t.Kind {
	case KindTime:
		tm := g.q("time", "")
		return fmt.Sprintf("x, err := %sParse(%sRFC3339Nano, %s)\n%s\n%s = x", tm, tm, src, fail("an RFC 3339 time"), dst)
	case KindDuration:
		return fmt.Sprintf("x, err := %sParseDuration(%s)\n%s\n%s = %s", g.q("time", ""), src, fail("a duration such as 1.5s"), dst, g.typ(t.Go)+"(x)")
	}
	b := t.Basic
	switch {
	case b.Info()&types.IsString != 0:
		return fmt.Sprintf("%s = %s", dst, conv(src))
	case b.Kind() == types.Bool:
		return fmt.Sprintf("x, err := %sParseBool(%s)\n%s\n%s = %s", sc, src, fail("true or false"), dst, conv("x"))
	case b.Info()&types.IsUnsigned != 0:
		return fmt.Sprintf("x, err := %sParseUint(%s, 10, %d)\n%s\n%s = %s", sc, src, bits(b), fail("a non-negative integer"), dst, conv("x"))
	case b.Info()&types.IsInteger != 0:
		return fmt.Sprintf("x, err := %sParseInt(%s, 10, %d)\n%s\n%s = %s", sc, src, bits(b), fail("an integer"), dst, conv("x"))
	case b.Info()&types.IsFloat != 0:
		return fmt.Sprintf("x, err := %sParseFloat(%s, %d)\n%s\n%s = %s", sc, src, bits(b), fail("a number"), dst, conv("x"))
	}
	panic("unreachable")
}

// basicOfParse is the type strconv returns for t.
func basicOfParse(t *Type) string {
	b := t.Basic
	switch {
	case b.Info()&types.IsString != 0:
		return "string"
	case b.Kind() == types.Bool:
		return "bool"
	case b.Info()&types.IsUnsigned != 0:
		return "uint64"
	case b.Info()&types.IsInteger != 0:
		return "int64"
	}
	return "float64"
}

func bits(b *types.Basic) int {
	switch b.Kind() {
	case types.Int8, types.Uint8:
		return 8
	case types.Int16, types.Uint16:
		return 16
	case types.Int32, types.Uint32, types.Float32:
		return 32
	}
	return 64
}

// format returns an expression formatting v, a path or query value of type t, as a
// string.
func (w *svcGen) format(t *Type, v string) string {
	b := t.Basic
	sc := ""
	if b.Info()&types.IsString == 0 {
		sc = w.g.q("strconv", "")
	}
	as := func(typ string) string {
		if !t.Named && b.Name() == typ {
			return v
		}
		return typ + "(" + v + ")"
	}
	switch {
	case b.Info()&types.IsString != 0:
		return as("string")
	case b.Kind() == types.Bool:
		return sc + "FormatBool(" + as("bool") + ")"
	case b.Info()&types.IsUnsigned != 0:
		return sc + "FormatUint(" + as("uint64") + ", 10)"
	case b.Info()&types.IsInteger != 0:
		return sc + "FormatInt(" + as("int64") + ", 10)"
	}
	return sc + "FormatFloat(" + as("float64") + ", 'g', -1, " + fmt.Sprint(bits(b)) + ")"
}
