package compat

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"strings"

	"github.com/svckit/svckit/internal/gen"
)

// Pos is where a declaration is: a file and a line. The file of a declaration read at a
// git revision is written REF:path.
type Pos struct {
	File string
	Line int
}

// String is file:line, or the file alone when the line is unknown.
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Contract is what callers of a package's services depend on over the wire: the gRPC
// services with their methods and messages, and the HTTP route of each method. It is
// read from a Go package ([FromPackage]) or from a saved .proto and OpenAPI document
// ([LoadFiles]); [Compare] compares two.
type Contract struct {
	Source   string // what it was read from, for messages
	Services []*Service
	// HTTPKnown is false when the contract was read from a .proto alone: routes and
	// auth are then unknown and not compared.
	HTTPKnown bool
	// NATSKnown is true when the contract was read from Go: saved documents do not
	// carry the NATS subjects, which are then not compared.
	NATSKnown bool
}

// Service is one gRPC service.
type Service struct {
	GoName  string // the Go interface name; "" when read from a .proto
	GRPC    string // the full gRPC name, package.Service
	Pos     Pos
	Methods []*Method
}

// Method is one method: its gRPC shape and HTTP route.
type Method struct {
	Name   string
	Pos    Pos
	Req    *Message
	Resp   *Message
	Stream bool   // server streaming
	Route  string // "GET /orders/{id}"; "" when not served over HTTP
	NATS   string // the NATS request/reply subject; "" when not served over NATS
	// Auth is what callers must present: "public", or "bearer" followed by the
	// required roles; "" when unknown.
	Auth string
}

// Message is a protobuf message (a Go struct).
type Message struct {
	Name   string
	Pos    Pos
	Fields []*Field
}

// Field is a field of a message.
type Field struct {
	Name   string // the protobuf field name
	JSON   string // the JSON name on HTTP (and protojson)
	Number int
	Type   *Type
	Pos    Pos
}

// Type is the wire type of a field.
type Type struct {
	Scalar   string   // a protobuf scalar or well-known type name; "" for a message, list or map
	Optional bool     // a proto3 optional scalar (a Go pointer to a scalar)
	Msg      *Message // a message
	List     *Type    // repeated: the element
	Map      *Type    // map<string, V>: the value
}

// String is the type as the .proto writes it.
func (t *Type) String() string {
	switch {
	case t.List != nil:
		return "repeated " + t.List.String()
	case t.Map != nil:
		return "map<string, " + t.Map.String() + ">"
	case t.Msg != nil:
		return t.Msg.Name
	case t.Optional:
		return "optional " + t.Scalar
	}
	return t.Scalar
}

// FromPackage is the contract of a package loaded by the generator ([gen.Load]).
// Positions are made relative by rel, which may be nil.
func FromPackage(pkg *gen.Package, rel func(string) string) *Contract {
	if rel == nil {
		rel = func(s string) string { return s }
	}
	b := &goBuilder{rel: rel, msgs: map[*gen.Message]*Message{}, lines: map[string]map[int]map[string]int{}}
	c := &Contract{Source: rel(pkg.Dir), HTTPKnown: true, NATSKnown: true}
	for _, s := range pkg.Services {
		cs := &Service{GoName: s.Name, GRPC: s.GRPCName, Pos: b.pos(s.Pos)}
		for _, m := range s.Methods {
			cm := &Method{Name: m.Name, Pos: b.pos(m.Pos), Stream: m.Stream != nil}
			cm.Req = b.message(m.Req, cm.Pos)
			cm.Resp = b.message(m.Resp, cm.Pos)
			if m.HTTPMethod != "" {
				cm.Route = m.HTTPMethod + " " + normPath(m.HTTPPath)
			}
			// As the generator serves it: a unary method on its //svckit:nats subject or
			// svc.<gRPC service>.<Method>; //svckit:nats - is not served.
			if m.Stream == nil && m.NATS != "-" {
				cm.NATS = m.NATS
				if cm.NATS == "" {
					cm.NATS = "svc." + s.GRPCName + "." + m.Name
				}
			}
			cm.Auth = "public"
			if m.Auth != nil && !m.Auth.Public {
				cm.Auth = strings.TrimSpace("bearer " + strings.Join(m.Auth.Roles, " "))
			}
			cs.Methods = append(cs.Methods, cm)
		}
		c.Services = append(c.Services, cs)
	}
	return c
}

// normPath writes a route's path as the OpenAPI document does: {rest...} is {rest}.
func normPath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return strings.ReplaceAll(p, "...}", "}")
}

type goBuilder struct {
	rel  func(string) string
	msgs map[*gen.Message]*Message
	// lines caches, by file, the struct types declared in it: the line of the type's
	// name → field name → line.
	lines map[string]map[int]map[string]int
}

func (b *goBuilder) pos(p token.Position) Pos { return Pos{File: b.rel(p.Filename), Line: p.Line} }

// message converts m; a generated wrapper of parameters or results is at the method.
func (b *goBuilder) message(m *gen.Message, at Pos) *Message {
	if cm, ok := b.msgs[m]; ok {
		return cm
	}
	cm := &Message{Name: m.Name, Pos: at}
	b.msgs[m] = cm
	var fieldLines map[string]int
	if !m.Wrapper && m.Pos.Filename != "" {
		cm.Pos = b.pos(m.Pos)
		fieldLines = b.structFields(m.Pos)
	}
	for _, f := range m.Fields {
		fp := cm.Pos
		if l, ok := fieldLines[f.GoName]; ok {
			fp.Line = l
		}
		cm.Fields = append(cm.Fields, &Field{Name: f.ProtoName, JSON: f.JSONName, Number: f.Number, Type: b.typ(f.Type, at), Pos: fp})
	}
	return cm
}

func (b *goBuilder) typ(t *gen.Type, at Pos) *Type {
	switch t.Kind {
	case gen.KindBasic:
		return &Type{Scalar: scalarName(t.Basic)}
	case gen.KindBytes:
		return &Type{Scalar: "bytes"}
	case gen.KindTime:
		return &Type{Scalar: "google.protobuf.Timestamp"}
	case gen.KindDuration:
		return &Type{Scalar: "google.protobuf.Duration"}
	case gen.KindPointer:
		e := b.typ(t.Elem, at)
		if e.Scalar != "" && !strings.HasPrefix(e.Scalar, "google.protobuf.") {
			e.Optional = true
		}
		return e
	case gen.KindSlice:
		return &Type{List: b.typ(t.Elem, at)}
	case gen.KindMap:
		v := b.typ(t.Elem, at)
		v.Optional = false
		return &Type{Map: v}
	case gen.KindStruct:
		return &Type{Msg: b.message(t.Msg, at)}
	}
	return &Type{Scalar: "unknown"}
}

// scalarName is the protobuf scalar the generator maps a Go basic type to.
func scalarName(bt *types.Basic) string {
	if bt == nil {
		return "unknown"
	}
	switch bt.Kind() {
	case types.Bool:
		return "bool"
	case types.String:
		return "string"
	case types.Int8, types.Int16, types.Int32:
		return "int32"
	case types.Int, types.Int64:
		return "int64"
	case types.Uint8, types.Uint16, types.Uint32:
		return "uint32"
	case types.Uint, types.Uint64:
		return "uint64"
	case types.Float32:
		return "float"
	case types.Float64:
		return "double"
	}
	return bt.Name()
}

// structFields returns the lines of the fields of the struct type declared at p, by Go
// field name (fields of embedded structs declared in the same file by A.B paths too).
func (b *goBuilder) structFields(p token.Position) map[string]int {
	byLine, ok := b.lines[p.Filename]
	if !ok {
		byLine = map[int]map[string]int{}
		b.lines[p.Filename] = byLine
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p.Filename, nil, parser.SkipObjectResolution)
		if err == nil {
			structs := map[string]*ast.StructType{}
			ast.Inspect(f, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSpec)
				if !ok {
					return true
				}
				if st, ok := ts.Type.(*ast.StructType); ok {
					structs[ts.Name.Name] = st
				}
				return true
			})
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok {
					continue
				}
				for _, sp := range gd.Specs {
					ts, ok := sp.(*ast.TypeSpec)
					if !ok {
						continue
					}
					st, ok := ts.Type.(*ast.StructType)
					if !ok {
						continue
					}
					fields := map[string]int{}
					addFields(fset, st, "", structs, fields, 0)
					byLine[fset.Position(ts.Name.Pos()).Line] = fields
				}
			}
		}
	}
	return byLine[p.Line]
}

// addFields records the lines of st's fields under prefix, descending into embedded
// structs of the same file.
func addFields(fset *token.FileSet, st *ast.StructType, prefix string, structs map[string]*ast.StructType, out map[string]int, depth int) {
	if depth > 8 {
		return
	}
	for _, fl := range st.Fields.List {
		line := fset.Position(fl.Pos()).Line
		if len(fl.Names) == 0 {
			id, ok := fl.Type.(*ast.Ident)
			if !ok {
				continue
			}
			out[prefix+id.Name] = line
			if inner, ok := structs[id.Name]; ok {
				addFields(fset, inner, prefix+id.Name+".", structs, out, depth+1)
			}
			continue
		}
		for _, n := range fl.Names {
			out[prefix+n.Name] = line
		}
	}
}
