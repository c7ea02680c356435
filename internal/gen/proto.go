package gen

import (
	"fmt"
	"go/types"
	"strings"
	"unicode"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// protoFile builds the protobuf file descriptor of a package's services and messages.
func protoFile(pkg *Package) *descriptorpb.FileDescriptorProto {
	fd := &descriptorpb.FileDescriptorProto{
		Name:    proto.String(protoFileName(pkg)),
		Package: proto.String(pkg.ProtoPackage),
		Syntax:  proto.String("proto3"),
		Options: &descriptorpb.FileOptions{GoPackage: proto.String(pkg.PBPath)},
	}
	var needTime, needDuration bool
	var visit func(t *Type)
	visit = func(t *Type) {
		switch t.Kind {
		case KindTime:
			needTime = true
		case KindDuration:
			needDuration = true
		case KindPointer, KindSlice, KindMap:
			visit(t.Elem)
		}
	}
	for _, m := range pkg.Messages {
		for _, f := range m.Fields {
			visit(f.Type)
		}
	}
	if needDuration {
		fd.Dependency = append(fd.Dependency, "google/protobuf/duration.proto")
	}
	if needTime {
		fd.Dependency = append(fd.Dependency, "google/protobuf/timestamp.proto")
	}
	for _, m := range pkg.Messages {
		fd.MessageType = append(fd.MessageType, messageDescriptor(pkg, m))
	}
	for _, s := range pkg.Services {
		sd := &descriptorpb.ServiceDescriptorProto{Name: proto.String(s.Proto)}
		for _, m := range s.Methods {
			md := &descriptorpb.MethodDescriptorProto{
				Name:       proto.String(m.Name),
				InputType:  proto.String(fullMessageName(pkg, m.Req)),
				OutputType: proto.String(fullMessageName(pkg, m.Resp)),
			}
			if m.Stream != nil {
				md.ServerStreaming = proto.Bool(true)
			}
			switch {
			case m.HTTPMethod == "GET":
				md.Options = &descriptorpb.MethodOptions{IdempotencyLevel: descriptorpb.MethodOptions_NO_SIDE_EFFECTS.Enum()}
			case m.Idempotent || m.HTTPMethod == "PUT" || m.HTTPMethod == "DELETE":
				md.Options = &descriptorpb.MethodOptions{IdempotencyLevel: descriptorpb.MethodOptions_IDEMPOTENT.Enum()}
			}
			sd.Method = append(sd.Method, md)
		}
		fd.Service = append(fd.Service, sd)
	}
	return fd
}

// protoFileName is the path of the package's .proto relative to its root, the protobuf
// Go package's directory: the protobuf package's directory (shop.v1 → shop/v1/) and the
// Go package's name. protoc records this path in the descriptor, and the Go protobuf
// registry refuses a second file of the same path in one binary, so it must be unique
// where a bare "users.proto" is not; buf's PACKAGE_DIRECTORY_MATCH wants the same layout.
func protoFileName(pkg *Package) string {
	return strings.ReplaceAll(pkg.ProtoPackage, ".", "/") + "/" + pkg.Name + ".proto"
}

func fullMessageName(pkg *Package, m *Message) string { return "." + pkg.ProtoPackage + "." + m.Name }

// assignProtoNames gives every field its protobuf name and number.
func assignProtoNames(pkg *Package) {
	for _, m := range pkg.Messages {
		taken := map[string]bool{}
		for i, f := range m.Fields {
			name := protoIdent(snake(f.JSONName))
			for n := 2; taken[name]; n++ {
				name = fmt.Sprintf("%s_%d", protoIdent(snake(f.JSONName)), n)
			}
			taken[name] = true
			f.ProtoName = name
			f.Number = i + 1
		}
	}
}

// protoIdent makes s a valid protobuf identifier.
func protoIdent(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || r == '_' || (i > 0 && unicode.IsDigit(r))):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "field"
	}
	return b.String()
}

func messageDescriptor(pkg *Package, m *Message) *descriptorpb.DescriptorProto {
	d := &descriptorpb.DescriptorProto{Name: proto.String(m.Name)}
	var oneofs []*descriptorpb.OneofDescriptorProto
	for _, f := range m.Fields {
		fdp := &descriptorpb.FieldDescriptorProto{
			Name:     proto.String(f.ProtoName),
			Number:   proto.Int32(int32(f.Number)),
			Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
			JsonName: proto.String(f.JSONName),
		}
		t := f.Type
		switch t.Kind {
		case KindPointer:
			if t.Elem.Kind == KindBasic {
				fdp.Proto3Optional = proto.Bool(true)
				fdp.OneofIndex = proto.Int32(int32(len(oneofs)))
				oneofs = append(oneofs, &descriptorpb.OneofDescriptorProto{Name: proto.String("_" + f.ProtoName)})
			}
			t = t.Elem
		case KindSlice:
			fdp.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			t = t.Elem
			if t.Kind == KindPointer {
				t = t.Elem
			}
		case KindMap:
			fdp.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
			entry := mapEntryName(f.ProtoName)
			val := t.Elem
			if val.Kind == KindPointer {
				val = val.Elem
			}
			ed := &descriptorpb.DescriptorProto{
				Name:    proto.String(entry),
				Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				Field: []*descriptorpb.FieldDescriptorProto{
					{Name: proto.String("key"), Number: proto.Int32(1), JsonName: proto.String("key"),
						Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
						Type:  descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()},
					{Name: proto.String("value"), Number: proto.Int32(2), JsonName: proto.String("value"),
						Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()},
				},
			}
			setFieldType(pkg, ed.Field[1], val)
			d.NestedType = append(d.NestedType, ed)
			fdp.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
			fdp.TypeName = proto.String(fullMessageName(pkg, m) + "." + entry)
			d.Field = append(d.Field, fdp)
			continue
		}
		setFieldType(pkg, fdp, t)
		d.Field = append(d.Field, fdp)
	}
	d.OneofDecl = oneofs
	return d
}

// mapEntryName is protoc's name for the entry message of a map field.
func mapEntryName(field string) string {
	var b strings.Builder
	up := true
	for _, r := range field {
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
	return b.String() + "Entry"
}

func setFieldType(pkg *Package, fdp *descriptorpb.FieldDescriptorProto, t *Type) {
	switch t.Kind {
	case KindBytes:
		fdp.Type = descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
	case KindTime:
		fdp.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		fdp.TypeName = proto.String(".google.protobuf.Timestamp")
	case KindDuration:
		fdp.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		fdp.TypeName = proto.String(".google.protobuf.Duration")
	case KindStruct:
		fdp.Type = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
		fdp.TypeName = proto.String(fullMessageName(pkg, t.Msg))
	case KindBasic:
		fdp.Type = scalarType(t.Basic).Enum()
	}
}

// scalarType maps a Go basic type to its protobuf scalar type.
func scalarType(b *types.Basic) descriptorpb.FieldDescriptorProto_Type {
	switch b.Kind() {
	case types.Bool:
		return descriptorpb.FieldDescriptorProto_TYPE_BOOL
	case types.String:
		return descriptorpb.FieldDescriptorProto_TYPE_STRING
	case types.Int8, types.Int16, types.Int32:
		return descriptorpb.FieldDescriptorProto_TYPE_INT32
	case types.Int, types.Int64:
		return descriptorpb.FieldDescriptorProto_TYPE_INT64
	case types.Uint8, types.Uint16, types.Uint32:
		return descriptorpb.FieldDescriptorProto_TYPE_UINT32
	case types.Uint, types.Uint64:
		return descriptorpb.FieldDescriptorProto_TYPE_UINT64
	case types.Float32:
		return descriptorpb.FieldDescriptorProto_TYPE_FLOAT
	case types.Float64:
		return descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
	}
	panic(fmt.Sprintf("svckit gen: no protobuf type for %s", b))
}

// pbGoType is the Go type of a scalar in generated protobuf code.
func pbGoType(b *types.Basic) string {
	switch scalarType(b) {
	case descriptorpb.FieldDescriptorProto_TYPE_BOOL:
		return "bool"
	case descriptorpb.FieldDescriptorProto_TYPE_STRING:
		return "string"
	case descriptorpb.FieldDescriptorProto_TYPE_INT32:
		return "int32"
	case descriptorpb.FieldDescriptorProto_TYPE_INT64:
		return "int64"
	case descriptorpb.FieldDescriptorProto_TYPE_UINT32:
		return "uint32"
	case descriptorpb.FieldDescriptorProto_TYPE_UINT64:
		return "uint64"
	case descriptorpb.FieldDescriptorProto_TYPE_FLOAT:
		return "float32"
	}
	return "float64"
}

// protoText prints the .proto source of fd, with the documentation of the model, and
// returns the source locations of the documented declarations, as protoc would record
// them, so that the generated Go code carries the same comments.
func protoText(pkg *Package, fd *descriptorpb.FileDescriptorProto) ([]byte, *descriptorpb.SourceCodeInfo) {
	var b strings.Builder
	lines := 0
	w := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		lines += strings.Count(s, "\n")
		b.WriteString(s)
	}
	info := &descriptorpb.SourceCodeInfo{}
	// loc records the declaration about to be written on the current line.
	loc := func(doc string, indent int, path ...int32) {
		if doc == "" {
			return
		}
		line := int32(lines)
		var lead strings.Builder
		for _, l := range strings.Split(doc, "\n") {
			if l != "" {
				lead.WriteString(" ")
			}
			lead.WriteString(l + "\n")
		}
		info.Location = append(info.Location, &descriptorpb.SourceCodeInfo_Location{
			Path:            path,
			Span:            []int32{line, int32(indent), int32(indent + 1)},
			LeadingComments: proto.String(lead.String()),
		})
	}
	comment := func(indent, doc string) {
		if doc == "" {
			return
		}
		for _, l := range strings.Split(doc, "\n") {
			if l == "" {
				w("%s//\n", indent)
			} else {
				w("%s// %s\n", indent, l)
			}
		}
	}
	w("%s\n// source: package %s\n\n", header, pkg.Path)
	w("syntax = \"proto3\";\n\npackage %s;\n\n", fd.GetPackage())
	for _, dep := range fd.Dependency {
		w("import %q;\n", dep)
	}
	if len(fd.Dependency) > 0 {
		w("\n")
	}
	w("option go_package = %q;\n", fd.GetOptions().GetGoPackage())
	for i, sd := range fd.Service {
		s := pkg.Services[i]
		w("\n")
		comment("", s.Doc)
		loc(s.Doc, 0, 6, int32(i))
		w("service %s {\n", sd.GetName())
		methods := map[string]bool{}
		for _, md := range sd.Method {
			methods[md.GetName()] = true
		}
		for j, md := range sd.Method {
			comment("  ", s.Methods[j].Doc)
			loc(s.Methods[j].Doc, 2, 6, int32(i), 2, int32(j))
			stream := ""
			if md.GetServerStreaming() {
				stream = "stream "
			}
			w("  rpc %s(%s) returns (%s%s)", md.GetName(), scopedName(fd, md.GetInputType(), methods), stream, scopedName(fd, md.GetOutputType(), methods))
			if lvl := md.GetOptions().GetIdempotencyLevel(); lvl != descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN {
				w(" {\n    option idempotency_level = %s;\n  }\n", lvl)
			} else {
				w(";\n")
			}
		}
		w("}\n")
	}
	for i, d := range fd.MessageType {
		m := pkg.Messages[i]
		w("\n")
		comment("", m.Doc)
		loc(m.Doc, 0, 4, int32(i))
		if len(d.Field) == 0 {
			w("message %s {}\n", d.GetName())
			continue
		}
		w("message %s {\n", d.GetName())
		inner := map[string]bool{}
		for _, f := range d.Field {
			inner[f.GetName()] = true
		}
		for _, nd := range d.NestedType {
			inner[nd.GetName()] = true
		}
		for j, f := range d.Field {
			comment("  ", m.Fields[j].Doc)
			loc(m.Fields[j].Doc, 2, 4, int32(i), 2, int32(j))
			w("  %s %s = %d", fieldTypeText(fd, d, f, inner), f.GetName(), f.GetNumber())
			if f.GetJsonName() != protoJSONName(f.GetName()) {
				w(" [json_name = %q]", f.GetJsonName())
			}
			w(";\n")
		}
		w("}\n")
	}
	return []byte(b.String()), info
}

// scopedName writes a fully-qualified message name as the .proto refers to it from inside
// a service or message: relative to the file's package, or fully qualified with its
// leading dot when a name of that scope would shadow the first component. (protoc
// resolves names from the innermost scope out and stops at the first match: in a service
// with a method Thing, "Thing" names the method, not the message.)
func scopedName(fd *descriptorpb.FileDescriptorProto, full string, shadow map[string]bool) string {
	rel := strings.TrimPrefix(full, ".")
	if rest, ok := strings.CutPrefix(full, "."+fd.GetPackage()+"."); ok {
		rel = rest
	}
	if first, _, _ := strings.Cut(rel, "."); shadow[first] {
		return full
	}
	return rel
}

func fieldTypeText(fd *descriptorpb.FileDescriptorProto, d *descriptorpb.DescriptorProto, f *descriptorpb.FieldDescriptorProto, shadow map[string]bool) string {
	if f.GetLabel() == descriptorpb.FieldDescriptorProto_LABEL_REPEATED && f.GetType() == descriptorpb.FieldDescriptorProto_TYPE_MESSAGE {
		for _, nd := range d.NestedType {
			if strings.HasSuffix(f.GetTypeName(), "."+nd.GetName()) && nd.GetOptions().GetMapEntry() {
				return fmt.Sprintf("map<string, %s>", scalarText(fd, nd.Field[1], shadow))
			}
		}
	}
	t := scalarText(fd, f, shadow)
	switch {
	case f.GetLabel() == descriptorpb.FieldDescriptorProto_LABEL_REPEATED:
		return "repeated " + t
	case f.GetProto3Optional():
		return "optional " + t
	}
	return t
}

func scalarText(fd *descriptorpb.FileDescriptorProto, f *descriptorpb.FieldDescriptorProto, shadow map[string]bool) string {
	if f.GetType() == descriptorpb.FieldDescriptorProto_TYPE_MESSAGE {
		return scopedName(fd, f.GetTypeName(), shadow)
	}
	return strings.ToLower(strings.TrimPrefix(f.GetType().String(), "TYPE_"))
}
