package gen

import (
	"bytes"
	"fmt"
	"go/format"
	"go/types"
	"path"
	"slices"
	"strings"
)

// goFile accumulates the body of a generated Go file and the imports it needs.
type goFile struct {
	pkg     *Package
	body    bytes.Buffer
	byPath  map[string]string // import path → local name
	used    map[string]string // local name → import path
	helpers map[string]string // name → source of helper functions, emitted sorted
}

func newGoFile(pkg *Package) *goFile {
	return &goFile{pkg: pkg, byPath: map[string]string{}, used: map[string]string{}, helpers: map[string]string{}}
}

// p writes one formatted line.
func (g *goFile) p(format string, args ...any) {
	fmt.Fprintf(&g.body, format, args...)
	g.body.WriteByte('\n')
}

// imp returns the local name of an import, adding it with the preferred name (or its last
// path element) if needed.
func (g *goFile) imp(importPath, preferred string) string {
	if importPath == g.pkg.Path {
		return ""
	}
	if n, ok := g.byPath[importPath]; ok {
		return n
	}
	name := preferred
	if name == "" {
		name = path.Base(importPath)
	}
	base := name
	for i := 2; ; i++ {
		if _, taken := g.used[name]; !taken && g.pkg.types.Scope().Lookup(name) == nil {
			break
		}
		name = fmt.Sprintf("%s%d", base, i)
	}
	g.byPath[importPath] = name
	g.used[name] = importPath
	return name
}

// q returns "name." for an import, for use before an identifier.
func (g *goFile) q(importPath, preferred string) string {
	n := g.imp(importPath, preferred)
	if n == "" {
		return ""
	}
	return n + "."
}

// typ prints a Go type, importing the packages it names.
func (g *goFile) typ(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string { return g.imp(p.Path(), p.Name()) })
}

// Common imports.
func (g *goFile) ctx() string    { return g.q("context", "") + "Context" }
func (g *goFile) ep() string     { return g.q("github.com/svckit/svckit/endpoint", "") }
func (g *goFile) shttp() string  { return g.q("github.com/svckit/svckit/transport/http", "shttp") }
func (g *goFile) sgrpc() string  { return g.q("github.com/svckit/svckit/transport/grpc", "sgrpc") }
func (g *goFile) svcerr() string { return g.q("github.com/svckit/svckit/svcerr", "") }
func (g *goFile) pb() string     { return g.q(g.pkg.PBPath, g.pkg.PBName) }

func (g *goFile) helper(name, src string) string {
	g.helpers[name] = src
	return name
}

// bytes returns the formatted file.
func (g *goFile) bytes(doc string) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString(header + "\n\n")
	if doc != "" {
		for _, l := range strings.Split(doc, "\n") {
			out.WriteString("// " + l + "\n")
		}
		out.WriteString("\n")
	}
	fmt.Fprintf(&out, "package %s\n\n", g.pkg.Name)
	var std, other []string
	for p, n := range g.byPath {
		line := fmt.Sprintf("%q", p)
		if n != path.Base(p) {
			line = n + " " + line
		}
		if strings.Contains(strings.Split(p, "/")[0], ".") {
			other = append(other, line)
		} else {
			std = append(std, line)
		}
	}
	slices.Sort(std)
	slices.SortFunc(other, func(a, b string) int { return strings.Compare(unquoteImport(a), unquoteImport(b)) })
	if len(std)+len(other) > 0 {
		out.WriteString("import (\n")
		for _, l := range std {
			out.WriteString("\t" + l + "\n")
		}
		if len(std) > 0 && len(other) > 0 {
			out.WriteString("\n")
		}
		for _, l := range other {
			out.WriteString("\t" + l + "\n")
		}
		out.WriteString(")\n\n")
	}
	out.Write(g.body.Bytes())
	names := make([]string, 0, len(g.helpers))
	for n := range g.helpers {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		out.WriteString("\n" + g.helpers[n] + "\n")
	}
	src, err := format.Source(out.Bytes())
	if err != nil {
		return out.Bytes(), fmt.Errorf("svckit gen produced invalid Go (a bug; please report it): %w", err)
	}
	return src, nil
}

func unquoteImport(l string) string {
	if i := strings.IndexByte(l, '"'); i >= 0 {
		return l[i:]
	}
	return l
}

// comment writes doc as a Go comment with the given indent.
func (g *goFile) comment(indent, doc string) {
	if doc == "" {
		return
	}
	for _, l := range strings.Split(doc, "\n") {
		if l == "" {
			g.p("%s//", indent)
		} else {
			g.p("%s// %s", indent, l)
		}
	}
}

// docf writes a generated doc comment, wrapped at 90 columns.
func (g *goFile) docf(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	line := "//"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > 90 && line != "//" {
			g.p("%s", line)
			line = "//"
		}
		line += " " + w
	}
	g.p("%s", line)
}
