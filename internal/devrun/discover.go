package devrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SvckitModule is the import path whose importers discovery takes for services.
const SvckitModule = "github.com/svckit/svckit"

// ErrNoServices is returned by Discover and Load when a directory has neither a
// svckit.yaml nor a service main package below it.
var ErrNoServices = errors.New("no svckit.yaml and no service main packages")

// Load returns the system of dir: the manifest dir/svckit.yaml when there is one, or
// else the system Discover finds below dir.
func Load(ctx context.Context, dir string) (*Manifest, error) {
	m, err := LoadManifest(dir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	if st, serr := os.Stat(dir); serr != nil {
		return nil, fmt.Errorf("system directory: %w", serr)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("system directory %s: not a directory", dir)
	}
	return Discover(ctx, dir)
}

// Discover makes a manifest for a directory without svckit.yaml. Every main package at or
// below dir that imports github.com/svckit/svckit becomes a service with one replica,
// named after its directory (cmd/orders → orders) and built from its path relative to
// dir ("./cmd/orders"). The services named gateway are public; when there is only one
// service, it is. The system is named after dir. The manifest's Discovered is true.
//
// Discover lists packages with `go list -find ./...` in dir (no dependency is resolved)
// and reads only the import clauses of each main package's files. When nothing is found,
// or dir is not inside a Go module, the error wraps ErrNoServices.
func Discover(ctx context.Context, dir string) (*Manifest, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("discover: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-find", "-e",
		"-f", "{{.Name}}\t{{.Dir}}\t{{join .GoFiles \"\\t\"}}\t{{join .CgoFiles \"\\t\"}}", "./...")
	cmd.Dir = abs
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("discover: %w", ctx.Err())
		}
		// Not in a module, no Go files: nothing to run, with the go command's reason.
		why := strings.TrimSpace(firstLine(stderr.String()))
		if why == "" {
			why = err.Error()
		}
		return nil, fmt.Errorf("%w under %s (go list: %s)", ErrNoServices, dir, why)
	}
	m := &Manifest{Name: sanitizeName(filepath.Base(abs)), Dir: filepath.Clean(dir), Discovered: true}
	if m.Name == "" {
		m.Name = "system"
	}
	byName := map[string]string{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 || fields[0] != "main" {
			continue
		}
		pkgDir := fields[1]
		if !importsSvckit(pkgDir, fields[2:]) {
			continue
		}
		rel, err := filepath.Rel(abs, pkgDir)
		if err != nil {
			return nil, fmt.Errorf("discover: %w", err)
		}
		pkg := "./" + filepath.ToSlash(rel)
		if rel == "." {
			pkg = "."
		}
		name := sanitizeName(filepath.Base(pkgDir))
		if !nameRE.MatchString(name) {
			return nil, fmt.Errorf("discover: cannot name a service after directory %s; name it in %s",
				pkg, filepath.Join(dir, ManifestFile))
		}
		if other, dup := byName[name]; dup {
			return nil, fmt.Errorf("discover: %s and %s would both be service %q; name them in %s",
				other, pkg, name, filepath.Join(dir, ManifestFile))
		}
		byName[name] = pkg
		m.Services = append(m.Services, Service{Name: name, Package: pkg, Replicas: 1})
	}
	if len(m.Services) == 0 {
		return nil, fmt.Errorf("%w under %s (a service is a package main that imports %s)", ErrNoServices, dir, SvckitModule)
	}
	sort.Slice(m.Services, func(i, j int) bool { return m.Services[i].Name < m.Services[j].Name })
	for i := range m.Services {
		s := &m.Services[i]
		s.Public = s.Name == "gateway" || len(m.Services) == 1
	}
	return m, nil
}

// importsSvckit reports whether one of the files imports the svckit package itself.
func importsSvckit(dir string, files []string) bool {
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "" {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			continue
		}
		for _, imp := range f.Imports {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil && p == SvckitModule {
				return true
			}
		}
	}
	return false
}

// sanitizeName turns a directory name into a service name: lower case, with dashes for
// underscores, dots and spaces, and without other characters.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// DefaultDir returns the directory `svckit dev` runs when it is given none, for the
// working directory wd: wd itself when it has a svckit.yaml; the reference shop
// (wd/examples/shop) when wd is the root of svckit's own repository; wd otherwise, whose
// services Discover finds.
func DefaultDir(wd string) string {
	if _, err := os.Stat(filepath.Join(wd, ManifestFile)); err == nil {
		return wd
	}
	shop := filepath.Join(wd, "examples", "shop")
	if b, err := os.ReadFile(filepath.Join(wd, "go.mod")); err == nil && modulePath(b) == SvckitModule {
		if _, err := os.Stat(filepath.Join(shop, ManifestFile)); err == nil {
			return shop
		}
	}
	return wd
}

// modulePath returns the module path a go.mod declares, or "".
func modulePath(gomod []byte) string {
	for line := range strings.SplitSeq(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "module" {
			p, err := strconv.Unquote(f[1])
			if err != nil {
				p = f[1]
			}
			return p
		}
	}
	return ""
}
