package gen

import (
	"fmt"
	"go/types"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
)

// conv writes the functions that convert between the package's Go types and the
// generated protobuf types.
type conv struct {
	g    *goFile
	pkg  *Package
	msgs map[string]*protogen.Message // by protobuf message name
	// streamItems are the wrapper messages that carry one non-struct stream item.
	streamItems map[*Message]*Type
}

func newConv(g *goFile, pkg *Package, file *protogen.File) *conv {
	c := &conv{g: g, pkg: pkg, msgs: map[string]*protogen.Message{}, streamItems: map[*Message]*Type{}}
	for _, m := range file.Messages {
		c.msgs[string(m.Desc.Name())] = m
	}
	for _, s := range pkg.Services {
		for _, m := range s.Methods {
			if m.Stream != nil && !m.RespUser {
				c.streamItems[m.Resp] = m.Stream
			}
		}
	}
	return c
}

func (c *conv) pbField(m *Message, f *Field) *protogen.Field {
	pm := c.msgs[m.Name]
	for _, pf := range pm.Fields {
		if int(pf.Desc.Number()) == f.Number {
			return pf
		}
	}
	panic(fmt.Sprintf("svckit gen: no field %d in message %s", f.Number, m.Name))
}

// goType is the Go type a message converts to and from.
func (c *conv) goType(m *Message) string {
	if it, ok := c.streamItems[m]; ok {
		return c.g.typ(it.Go)
	}
	if m.Wrapper {
		return m.GoName
	}
	return c.g.typ(m.Go)
}

func (c *conv) pbType(m *Message) string { return "*" + c.g.pb() + c.msgs[m.Name].GoIdent.GoName }

func toPBName(m *Message) string   { return "toPB" + m.Name }
func fromPBName(m *Message) string { return "fromPB" + m.Name }

// messages writes toPBX and fromPBX for every message.
func (c *conv) messages() {
	for _, m := range c.pkg.Messages {
		gt, pt := c.goType(m), c.pbType(m)
		pbName := strings.TrimPrefix(pt, "*")
		if it, ok := c.streamItems[m]; ok {
			f := m.Fields[0]
			pf := c.pbField(m, f)
			c.g.p("func %s(v %s) %s {", toPBName(m), gt, pt)
			c.g.p("\treturn &%s{%s: %s}", pbName, pf.GoName, c.toPB(it, "v"))
			c.g.p("}\n")
			c.g.p("func %s(m %s) %s {", fromPBName(m), pt, gt)
			c.g.p("\treturn %s", c.fromPB(it, c.getter(f, pf, "m")))
			c.g.p("}\n")
			continue
		}
		// Go → protobuf.
		c.g.p("func %s(v %s) %s {", toPBName(m), gt, pt)
		if len(m.Fields) == 0 {
			c.g.p("\treturn &%s{}", pbName)
		} else {
			c.g.p("\treturn &%s{", pbName)
			for _, f := range m.Fields {
				c.g.p("\t\t%s: %s,", c.pbField(m, f).GoName, c.toPB(f.Type, "v."+f.GoName))
			}
			c.g.p("\t}")
		}
		c.g.p("}\n")
		// protobuf → Go.
		c.g.p("func %s(m %s) %s {", fromPBName(m), pt, gt)
		literal := true
		for _, f := range m.Fields {
			if strings.Contains(f.GoName, ".") || (f.Type.Kind == KindPointer && f.Type.Elem.Kind == KindBasic) {
				literal = false
			}
		}
		switch {
		case len(m.Fields) == 0:
			c.g.p("\treturn %s{}", gt)
		case literal:
			c.g.p("\treturn %s{", gt)
			for _, f := range m.Fields {
				pf := c.pbField(m, f)
				c.g.p("\t\t%s: %s,", f.GoName, c.fromPB(f.Type, c.getter(f, pf, "m")))
			}
			c.g.p("\t}")
		default:
			c.g.p("\tvar v %s", gt)
			c.g.p("\tif m == nil {\n\t\treturn v\n\t}")
			for _, f := range m.Fields {
				pf := c.pbField(m, f)
				c.g.p("\tv.%s = %s", f.GoName, c.fromPB(f.Type, c.getter(f, pf, "m")))
			}
			c.g.p("\treturn v")
		}
		c.g.p("}\n")
	}
}

// getter reads a protobuf field: with its nil-safe getter, or directly for optional
// scalars, whose getter would drop the presence.
func (c *conv) getter(f *Field, pf *protogen.Field, m string) string {
	if f.Type.Kind == KindPointer && f.Type.Elem.Kind == KindBasic {
		return m + "." + pf.GoName
	}
	return m + ".Get" + pf.GoName + "()"
}

// mangle names a helper after a Go type: *[]shared.Address → PtrSliceSharedAddress.
func (c *conv) mangle(t *Type) string {
	if n, ok := types.Unalias(t.Go).(*types.Named); ok && t.Kind != KindStruct {
		name := n.Obj().Name()
		if p := n.Obj().Pkg(); p != nil && p.Path() != c.pkg.Path {
			name = exported(p.Name()) + name
		}
		return name
	}
	switch t.Kind {
	case KindPointer:
		return "Ptr" + c.mangle(t.Elem)
	case KindSlice:
		return "Slice" + c.mangle(t.Elem)
	case KindMap:
		key := "String"
		if kt := types.Unalias(t.Go).Underlying().(*types.Map).Key(); !types.Identical(kt, types.Typ[types.String]) {
			key = c.mangle(&Type{Kind: KindBasic, Go: kt})
		}
		return "Map" + key + c.mangle(t.Elem)
	case KindStruct:
		return t.Msg.Name
	case KindBytes:
		return "Bytes"
	}
	return exported(types.TypeString(t.Go, func(p *types.Package) string { return p.Name() }))
}

// pbElemType is the protobuf Go type of t as an element or field.
func (c *conv) pbElemType(t *Type) string {
	switch t.Kind {
	case KindBasic:
		return pbGoType(t.Basic)
	case KindBytes:
		return "[]byte"
	case KindTime:
		return "*" + c.g.q("google.golang.org/protobuf/types/known/timestamppb", "") + "Timestamp"
	case KindDuration:
		return "*" + c.g.q("google.golang.org/protobuf/types/known/durationpb", "") + "Duration"
	case KindStruct:
		return c.pbType(t.Msg)
	case KindPointer:
		if t.Elem.Kind == KindBasic {
			return "*" + pbGoType(t.Elem.Basic)
		}
		return c.pbElemType(t.Elem)
	case KindSlice:
		return "[]" + c.pbElemType(t.Elem)
	case KindMap:
		return "map[string]" + c.pbElemType(t.Elem)
	}
	panic("unreachable")
}

// identity reports whether a Go value of t is already of its protobuf Go type.
func (c *conv) identity(t *Type) bool {
	switch t.Kind {
	case KindBasic:
		return !t.Named && pbGoType(t.Basic) == t.Basic.Name()
	case KindBytes:
		return !t.Named
	case KindSlice:
		return !t.Named && c.identity(t.Elem)
	case KindMap:
		kt := types.Unalias(t.Go).Underlying().(*types.Map).Key()
		return !t.Named && types.Identical(kt, types.Typ[types.String]) && c.identity(t.Elem)
	}
	return false
}

// toPB returns an expression converting x, of type t, to its protobuf Go type.
func (c *conv) toPB(t *Type, x string) string {
	if c.identity(t) {
		return x
	}
	switch t.Kind {
	case KindBasic:
		return pbGoType(t.Basic) + "(" + x + ")"
	case KindBytes:
		return "[]byte(" + x + ")"
	case KindTime:
		ts := c.g.q("google.golang.org/protobuf/types/known/timestamppb", "")
		return c.g.helper("toPBTime", fmt.Sprintf(`// toPBTime converts a time; the zero time is no timestamp.
func toPBTime(t %s) *%sTimestamp {
	if t.IsZero() {
		return nil
	}
	return %sNew(t)
}`, c.g.q("time", "")+"Time", ts, ts)) + "(" + x + ")"
	case KindDuration:
		return c.g.q("google.golang.org/protobuf/types/known/durationpb", "") + "New(" + x + ")"
	case KindStruct:
		return toPBName(t.Msg) + "(" + x + ")"
	case KindPointer:
		name := "toPB" + c.mangle(t)
		var body string
		if t.Elem.Kind == KindBasic {
			body = fmt.Sprintf("\tw := %s\n\treturn &w", c.toPB(t.Elem, "*v"))
		} else {
			body = "\treturn " + c.toPB(t.Elem, "*v")
		}
		return c.g.helper(name, fmt.Sprintf("func %s(v %s) %s {\n\tif v == nil {\n\t\treturn nil\n\t}\n%s\n}",
			name, c.g.typ(t.Go), c.pbElemType(t), body)) + "(" + x + ")"
	case KindSlice:
		if c.identity(t.Elem) {
			return c.pbElemType(t) + "(" + x + ")"
		}
		name := "toPB" + c.mangle(t)
		elem := c.toPB(t.Elem, "e")
		if t.Elem.Kind == KindPointer && t.Elem.Elem.Kind == KindStruct {
			elem = fmt.Sprintf("%s(nonNil(e))", toPBName(t.Elem.Elem.Msg))
			c.nonNil()
		}
		return c.g.helper(name, fmt.Sprintf(`func %s(v %s) %s {
	if v == nil {
		return nil
	}
	out := make(%s, len(v))
	for i, e := range v {
		out[i] = %s
	}
	return out
}`, name, c.g.typ(t.Go), c.pbElemType(t), c.pbElemType(t), elem)) + "(" + x + ")"
	case KindMap:
		name := "toPB" + c.mangle(t)
		elem := c.toPB(t.Elem, "e")
		if t.Elem.Kind == KindPointer && t.Elem.Elem.Kind == KindStruct {
			elem = fmt.Sprintf("%s(nonNil(e))", toPBName(t.Elem.Elem.Msg))
			c.nonNil()
		}
		return c.g.helper(name, fmt.Sprintf(`func %s(v %s) %s {
	if v == nil {
		return nil
	}
	out := make(%s, len(v))
	for k, e := range v {
		out[string(k)] = %s
	}
	return out
}`, name, c.g.typ(t.Go), c.pbElemType(t), c.pbElemType(t), elem)) + "(" + x + ")"
	}
	panic("unreachable")
}

func (c *conv) nonNil() {
	c.g.helper("nonNil", `// nonNil returns *p, or the zero value for a nil p: protobuf lists and maps of
// messages cannot hold nil.
func nonNil[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}`)
}

// fromPB returns an expression converting x, of t's protobuf Go type, to t.
func (c *conv) fromPB(t *Type, x string) string {
	if c.identity(t) {
		return x
	}
	switch t.Kind {
	case KindBasic, KindBytes:
		return c.g.typ(t.Go) + "(" + x + ")"
	case KindTime:
		return c.g.helper("fromPBTime", fmt.Sprintf(`// fromPBTime converts a timestamp; no timestamp is the zero time.
func fromPBTime(ts *%sTimestamp) %sTime {
	if ts == nil {
		return %sTime{}
	}
	return ts.AsTime()
}`, c.g.q("google.golang.org/protobuf/types/known/timestamppb", ""), c.g.q("time", ""), c.g.q("time", ""))) + "(" + x + ")"
	case KindDuration:
		if t.Go.String() != "time.Duration" {
			return c.g.typ(t.Go) + "(" + x + ".AsDuration())"
		}
		return x + ".AsDuration()"
	case KindStruct:
		return fromPBName(t.Msg) + "(" + x + ")"
	case KindPointer:
		name := "fromPB" + c.mangle(t)
		return c.g.helper(name, fmt.Sprintf("func %s(m %s) %s {\n\tif m == nil {\n\t\treturn nil\n\t}\n\tv := %s\n\treturn &v\n}",
			name, c.pbElemType(t), c.g.typ(t.Go), c.fromPB(t.Elem, c.deref(t.Elem, "m")))) + "(" + x + ")"
	case KindSlice:
		if c.identity(t.Elem) {
			return c.g.typ(t.Go) + "(" + x + ")"
		}
		name := "fromPB" + c.mangle(t)
		elem := c.fromPB(t.Elem, "e")
		return c.g.helper(name, fmt.Sprintf(`func %s(m %s) %s {
	if m == nil {
		return nil
	}
	out := make(%s, len(m))
	for i, e := range m {
		out[i] = %s
	}
	return out
}`, name, c.pbElemType(t), c.g.typ(t.Go), c.g.typ(t.Go), elem)) + "(" + x + ")"
	case KindMap:
		name := "fromPB" + c.mangle(t)
		elem := c.fromPB(t.Elem, "e")
		key := "k"
		if kt := types.Unalias(t.Go).Underlying().(*types.Map).Key(); !types.Identical(kt, types.Typ[types.String]) {
			key = c.g.typ(kt) + "(k)"
		}
		return c.g.helper(name, fmt.Sprintf(`func %s(m %s) %s {
	if m == nil {
		return nil
	}
	out := make(%s, len(m))
	for k, e := range m {
		out[%s] = %s
	}
	return out
}`, name, c.pbElemType(t), c.g.typ(t.Go), c.g.typ(t.Go), key, elem)) + "(" + x + ")"
	}
	panic("unreachable")
}

// deref is the protobuf value a pointer's element converts from: *m for optional scalars,
// m itself for messages.
func (c *conv) deref(elem *Type, m string) string {
	if elem.Kind == KindBasic {
		return "*" + m
	}
	return m
}
