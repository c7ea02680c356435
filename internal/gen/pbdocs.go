package gen

import (
	"bytes"
	"fmt"
	"go/format"
	"strconv"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// pbDocsFunc is the function of the protobuf Go package that returns its .proto file with
// the doc comments.
const pbDocsFunc = "FileDescriptorWithDocs"

// pbDocsFile is the name of the file that declares pbDocsFunc, in the protobuf Go package's
// directory.
const pbDocsFile = "descriptor_gen.go"

// pbDocs returns the Go file of the protobuf package that carries withDocs, the file
// descriptor with its SourceCodeInfo, serialized, and pbDocsFunc, which returns it.
// protoc-gen-go embeds the descriptor without the source info, and the Go protobuf
// registry keeps none, so this is how the comments reach gRPC reflection: the generated
// RegisterGRPC hands the file to transport/grpc, whose reflection serves it.
//
// The bytes are not compressed: gzip output may change with the Go release, and the
// generated tree must stay the same for `svckit gen -check`.
func pbDocs(pkg *Package, withDocs *descriptorpb.FileDescriptorProto, pbFile *protogen.File) ([]byte, error) {
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(withDocs)
	if err != nil {
		return nil, fmt.Errorf("svckit gen: encoding the file descriptor of %s (a bug; please report it): %w", protoFileName(pkg), err)
	}
	var b bytes.Buffer
	b.WriteString(header + "\n\n")
	fmt.Fprintf(&b, "package %s\n\n", pkg.PBName)
	var regs []string
	for _, s := range pkg.Services {
		regs = append(regs, "Register"+s.Prefix+"GRPC")
	}
	verb := "hands"
	if len(regs) > 1 {
		verb = "hand"
	}
	g := newGoFile(pkg)
	g.docf("%s returns the file descriptor of %s with its doc comments: a serialized google.protobuf.FileDescriptorProto with SourceCodeInfo. The descriptor that protoc-gen-go embeds (%s) has none. %s of package %s %s this one to the gRPC server, whose reflection (transport/grpc.Standard) serves it, so that grpcurl describe shows the comments. Each call returns a new slice.",
		pbDocsFunc, protoFileName(pkg), pbFile.GoDescriptorIdent.GoName, strings.Join(regs, " and "), pkg.Name, verb)
	b.Write(g.body.Bytes())
	fmt.Fprintf(&b, "func %s() []byte {\n\treturn []byte(fileDescriptorWithDocs)\n}\n\n", pbDocsFunc)
	g = newGoFile(pkg)
	g.docf("fileDescriptorWithDocs is the serialized FileDescriptorProto of %s, with its SourceCodeInfo.", protoFileName(pkg))
	b.Write(g.body.Bytes())
	b.WriteString("const fileDescriptorWithDocs = \"\" +\n")
	chunks := splitDesc(raw)
	for i, c := range chunks {
		b.WriteString("\t" + strconv.Quote(string(c)))
		if i < len(chunks)-1 {
			b.WriteString(" +")
		}
		b.WriteString("\n")
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return b.Bytes(), fmt.Errorf("svckit gen produced invalid Go (a bug; please report it): %w", err)
	}
	return src, nil
}

// splitDesc cuts a serialized descriptor into the lines of a string literal, as
// protoc-gen-go does: after each '\n' byte (the tag of many a name), and every 64 bytes
// within longer runs, so that a changed comment or message changes few lines.
func splitDesc(raw []byte) [][]byte {
	const max = 64
	var out [][]byte
	for len(raw) > 0 {
		n := bytes.IndexByte(raw, '\n') + 1
		if n == 0 || n > max {
			n = min(max, len(raw))
		}
		out = append(out, raw[:n])
		raw = raw[n:]
	}
	if len(out) == 0 {
		out = append(out, nil)
	}
	return out
}

// pbDocsCall is the statement of a generated RegisterGRPC that hands the server the
// commented file descriptor.
func pbDocsCall(g *goFile) string {
	return "s.SetFileDocs(" + g.pb() + pbDocsFunc + "())"
}
