package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	pathpkg "path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/svckit/svckit/internal/devrun"
)

// OpenAPIFiles returns a function for [WithOpenAPIFunc] that finds the OpenAPI documents
// the generator wrote for each service of m: every *.openapi.json file in the directory
// of the service's main package and below it (at most three levels, skipping testdata,
// vendor and hidden directories). When there is none, as in a cmd/NAME layout, they are
// found in the directories of the packages whose generated server the main package
// starts: those on which it calls a function named Serve… or Register…HTTP
// (orders.ServeOrders(app, svc)), not those whose clients it only uses. A package given
// as an import path is located with `go list`. Several documents of one service (one per
// interface) are merged into one. Documents are read once and kept.
func OpenAPIFiles(m *devrun.Manifest) func(ctx context.Context, service string) ([]byte, error) {
	var mu sync.Mutex
	cache := map[string][]byte{}
	return func(ctx context.Context, service string) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if doc, ok := cache[service]; ok {
			return doc, nil
		}
		svc := m.Service(service)
		if svc == nil {
			return nil, nil
		}
		dir, err := packageDir(ctx, m.Dir, svc.Package)
		if err != nil {
			return nil, err
		}
		files, err := findOpenAPI(dir)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			if files, err = servedOpenAPI(ctx, dir); err != nil {
				return nil, err
			}
		}
		var docs [][]byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			docs = append(docs, b)
		}
		doc, err := MergeOpenAPI(docs...)
		if err != nil {
			return nil, fmt.Errorf("dashboard: OpenAPI documents of %s: %w", service, err)
		}
		cache[service] = doc
		return doc, nil
	}
}

// packageDir returns the directory of a Go package given relative to base ("./gateway")
// or as an import path.
func packageDir(ctx context.Context, base, pkg string) (string, error) {
	if strings.HasPrefix(pkg, ".") || filepath.IsAbs(pkg) {
		return filepath.Join(base, pkg), nil
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", pkg)
	cmd.Dir = base
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("dashboard: go list %s: %w", pkg, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// servedOpenAPI returns the OpenAPI documents beside the packages whose generated server
// the main package in dir starts (see OpenAPIFiles).
func servedOpenAPI(ctx context.Context, dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	served := map[string]bool{} // import paths
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		servedPackages(f, served)
	}
	if len(served) == 0 {
		return nil, nil
	}
	args := append([]string{"list", "-f", "{{.Dir}}"}, slices.Sorted(maps.Keys(served))...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("dashboard: go list %s: %w", strings.Join(args[3:], " "), err)
	}
	var files []string
	for _, d := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ms, err := filepath.Glob(filepath.Join(d, "*.openapi.json"))
		if err != nil {
			return nil, err
		}
		files = append(files, ms...)
	}
	sort.Strings(files)
	return files, nil
}

// servedPackages adds to served the import paths of the packages on which f calls a
// function named Serve… or Register…HTTP.
func servedPackages(f *ast.File, served map[string]bool) {
	names := map[string]string{} // name in the file → import path
	for _, im := range f.Imports {
		path, err := strconv.Unquote(im.Path.Value)
		if err != nil {
			continue
		}
		name := pathpkg.Base(path)
		if im.Name != nil {
			name = im.Name.Name
		}
		names[name] = path
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		fn := sel.Sel.Name
		if path, ok := names[x.Name]; ok && (strings.HasPrefix(fn, "Serve") || strings.HasPrefix(fn, "Register") && strings.HasSuffix(fn, "HTTP")) {
			served[path] = true
		}
		return true
	})
}

func findOpenAPI(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || strings.Count(rel, string(filepath.Separator)) >= 3) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".openapi.json") {
			out = append(out, path)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// MergeOpenAPI merges OpenAPI documents into one: the first document's other fields, and
// the paths (with their operations) and component schemas of all; the first document
// wins where two define the same thing. No document gives
// nil; one is returned as it is.
func MergeOpenAPI(docs ...[]byte) ([]byte, error) {
	switch len(docs) {
	case 0:
		return nil, nil
	case 1:
		return docs[0], nil
	}
	var merged map[string]any
	for i, b := range docs {
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if merged == nil {
			merged = d
			continue
		}
		mergeInto(merged, d, "paths")
		comps, _ := merged["components"].(map[string]any)
		if comps == nil {
			comps = map[string]any{}
			merged["components"] = comps
		}
		if dc, ok := d["components"].(map[string]any); ok {
			mergeInto(comps, dc, "schemas")
		}
	}
	return json.Marshal(merged)
}

func mergeInto(dst, src map[string]any, key string) {
	from, _ := src[key].(map[string]any)
	if len(from) == 0 {
		return
	}
	to, _ := dst[key].(map[string]any)
	if to == nil {
		to = map[string]any{}
		dst[key] = to
	}
	for k, v := range from {
		have, ok := to[k]
		if !ok {
			to[k] = v
			continue
		}
		// The same path in two documents: keep the operations of both.
		hm, ok1 := have.(map[string]any)
		vm, ok2 := v.(map[string]any)
		if ok1 && ok2 {
			for op, def := range vm {
				if _, ok := hm[op]; !ok {
					hm[op] = def
				}
			}
		}
	}
}
