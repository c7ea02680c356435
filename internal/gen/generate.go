package gen

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Options configures a run of the generator.
type Options struct {
	// Types names the interfaces to generate code for. Empty selects the interfaces marked
	// //svckit:gen or, if none is marked, the package's only exported interface.
	Types []string
}

// File is one generated file.
type File struct {
	Path    string // absolute
	Content []byte
}

// Generate reads the Go package in dir and returns the files generated for it. It writes
// nothing. The error is an [ErrorList] when the input has problems, naming each with its
// position, method and reason.
func Generate(dir string, opts Options) (files []File, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("svckit gen: internal error generating %s (a bug; please report it with the interface): %v\n%s", dir, r, debug.Stack())
		}
	}()
	pkg, err := parse(dir, opts.Types)
	if err != nil {
		return nil, err
	}
	return generate(pkg)
}

// Load reads the Go package in dir and returns the generator's model of its services, for
// tools that need the routes, messages and methods without generating (a gateway, a
// dashboard, documentation). Errors are as for [Generate].
func Load(dir string, opts Options) (pkg *Package, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("svckit gen: internal error loading %s (a bug; please report it with the interface): %v\n%s", dir, r, debug.Stack())
		}
	}()
	pkg, err = parse(dir, opts.Types)
	if err != nil {
		return nil, err
	}
	assignProtoNames(pkg)
	return pkg, nil
}

func generate(pkg *Package) ([]File, error) {
	assignProtoNames(pkg)
	fd := protoFile(pkg)
	protoSrc, srcInfo := protoText(pkg, fd)
	withDocs := proto.Clone(fd).(*descriptorpb.FileDescriptorProto)
	withDocs.SourceCodeInfo = srcInfo
	pbSrc, pbFile, err := pbGo(withDocs)
	if err != nil {
		return nil, err
	}
	var files []File
	// The package-level file: conversions and helpers shared by every service.
	shared := newGoFile(pkg)
	c := newConv(shared, pkg, pbFile)
	c.messages()
	var svcFiles []File
	for _, s := range pkg.Services {
		g := newGoFile(pkg)
		w := &svcGen{g: g, pkg: pkg, s: s, c: &conv{g: g, pkg: pkg, msgs: c.msgs, streamItems: c.streamItems}, shared: c}
		w.generate()
		// Helpers that service files use (they import nothing) live in the shared file,
		// once for every service.
		for n, src := range g.helpers {
			shared.helpers[n] = src
		}
		g.helpers = nil
		src, err := g.bytes(fmt.Sprintf("This file serves the %s interface of package %s: endpoints, HTTP, gRPC and\nNATS transports and clients. Regenerate with svckit gen; edits are lost.", s.Name, pkg.Name))
		if err != nil {
			return nil, err
		}
		svcFiles = append(svcFiles, File{filepath.Join(pkg.Dir, snake(s.Name)+"_gen.go"), src})
	}
	sharedSrc, err := shared.bytes(fmt.Sprintf("This file converts between the Go types of package %s and their protobuf\nmessages in package %s.", pkg.Name, pkg.PBPath))
	if err != nil {
		return nil, err
	}
	files = append(files, svcFiles...)
	files = append(files, File{filepath.Join(pkg.Dir, "pbconv_gen.go"), sharedSrc})
	if err := checkClashes(pkg, files); err != nil {
		return nil, err
	}
	files = append(files, File{filepath.Join(pkg.PBDir, "doc_gen.go"), pbDoc(pkg)})
	files = append(files, File{filepath.Join(pkg.PBDir, pkg.Name+"_pb_gen.go"), pbSrc})
	docsSrc, err := pbDocs(pkg, withDocs, pbFile)
	if err != nil {
		return nil, err
	}
	files = append(files, File{filepath.Join(pkg.PBDir, pbDocsFile), docsSrc})
	files = append(files, File{filepath.Join(pkg.PBDir, filepath.FromSlash(protoFileName(pkg))), protoSrc})
	oa, err := openAPI(pkg)
	if err != nil {
		return nil, err
	}
	files = append(files, File{filepath.Join(pkg.Dir, pkg.Name+".openapi.json"), oa})
	return files, nil
}

// owned reports whether a file is the generator's: it carries the header.
func owned(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 1024)
	n, _ := f.Read(buf)
	return isGenerated(buf[:n]), nil
}

// Write writes files, leaving unchanged ones alone, and removes files the generator wrote
// earlier into the same directories that it no longer generates. It never overwrites or
// removes a file without the generator's header. It returns the paths it changed.
func Write(files []File) ([]string, error) {
	var changed []string
	for _, f := range files {
		old, err := os.ReadFile(f.Path)
		if err == nil && bytes.Equal(old, f.Content) {
			continue
		}
		if err == nil && !isGenerated(old) {
			return changed, fmt.Errorf("%s exists and was not written by svckit gen; not overwriting it (rename or remove it)", relPath(f.Path))
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return changed, err
		}
		if err := os.WriteFile(f.Path, f.Content, 0o644); err != nil {
			return changed, err
		}
		changed = append(changed, f.Path)
	}
	obsolete, err := obsoleteFiles(files)
	if err != nil {
		return changed, err
	}
	for _, p := range obsolete {
		if err := os.Remove(p); err != nil {
			return changed, err
		}
		changed = append(changed, p)
	}
	return changed, nil
}

// Check returns the files that Write would change: missing, different, or obsolete.
func Check(files []File) ([]string, error) {
	var stale []string
	for _, f := range files {
		old, err := os.ReadFile(f.Path)
		if err != nil || !bytes.Equal(old, f.Content) {
			stale = append(stale, f.Path)
		}
	}
	obsolete, err := obsoleteFiles(files)
	return append(stale, obsolete...), err
}

// obsoleteFiles lists generated files in the output directories that are no longer
// generated.
func obsoleteFiles(files []File) ([]string, error) {
	want := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range files {
		want[f.Path] = true
		dirs[filepath.Dir(f.Path)] = true
	}
	var out []string
	for dir := range dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			n := e.Name()
			if e.IsDir() || !(strings.HasSuffix(n, "_gen.go") || strings.HasSuffix(n, ".proto") || strings.HasSuffix(n, ".openapi.json")) {
				continue
			}
			p := filepath.Join(dir, n)
			if want[p] {
				continue
			}
			src, err := os.ReadFile(p)
			if err == nil && isGenerated(src) {
				out = append(out, p)
			}
		}
	}
	// The .proto lives below the protobuf Go package's directory, in its protobuf
	// package's directory: one left by an earlier protobuf package is obsolete too.
	for _, f := range files {
		if !strings.HasSuffix(f.Path, "_pb_gen.go") {
			continue
		}
		_ = filepath.WalkDir(filepath.Dir(f.Path), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".proto") || want[p] || slices.Contains(out, p) {
				return nil
			}
			if src, err := os.ReadFile(p); err == nil && isGenerated(src) {
				out = append(out, p)
			}
			return nil
		})
	}
	slices.Sort(out)
	return out, nil
}

// GeneratedPackages returns the directories below root that hold a package generated
// before: they have a pbconv_gen.go written by svckit gen. testdata, vendor and hidden
// directories are skipped, as the go command does. `svckit gen -check ./...` checks them.
func GeneratedPackages(root string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "pbconv_gen.go" {
			return nil
		}
		if ok, err := owned(p); err != nil || !ok {
			return err
		}
		dirs = append(dirs, filepath.Dir(p))
		return nil
	})
	return dirs, err
}

// checkClashes reports package-level names that the generated Go files declare and the
// package's own files declare too (the package was loaded without its generated files).
func checkClashes(pkg *Package, files []File) error {
	var errs errs
	fset := token.NewFileSet()
	for _, f := range files {
		if !strings.HasSuffix(f.Path, "_gen.go") || filepath.Dir(f.Path) != pkg.Dir {
			continue
		}
		af, err := parser.ParseFile(fset, f.Path, f.Content, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("svckit gen produced invalid Go (a bug; please report it): %w", err)
		}
		for _, d := range af.Decls {
			var names []*ast.Ident
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					names = append(names, d.Name)
				}
			case *ast.GenDecl:
				for _, sp := range d.Specs {
					switch sp := sp.(type) {
					case *ast.TypeSpec:
						names = append(names, sp.Name)
					case *ast.ValueSpec:
						names = append(names, sp.Names...)
					}
				}
			}
			for _, n := range names {
				if n.Name == "_" {
					continue
				}
				if o := pkg.types.Scope().Lookup(n.Name); o != nil {
					errs.add(pkg.fset.Position(o.Pos()), "", "%s is declared here and in the generated %s; rename yours", n.Name, filepath.Base(f.Path))
				}
			}
		}
	}
	return errs.err()
}

// pbDoc is the package documentation of the protobuf Go package.
func pbDoc(pkg *Package) []byte {
	var names []string
	for _, s := range pkg.Services {
		names = append(names, s.GRPCName)
	}
	g := newGoFile(pkg)
	g.docf("Package %s holds the protobuf messages of package %s (gRPC %s), as protoc-gen-go would write them for %s. svckit gen writes them from the Go interface; the conversions to and from the Go types are in package %s, file pbconv_gen.go. %s returns the .proto's descriptor with its doc comments, which gRPC reflection serves.",
		pkg.PBName, pkg.Path, strings.Join(names, ", "), protoFileName(pkg), pkg.Name, pbDocsFunc)
	return []byte(header + "\n\n" + g.body.String() + "package " + pkg.PBName + "\n")
}
