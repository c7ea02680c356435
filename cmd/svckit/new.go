package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"text/template"
	"unicode"

	"github.com/svckit/svckit/internal/gen"
)

const (
	svckitModule = "github.com/svckit/svckit"
	// svckitTool is the package go generate runs in a scaffolded service. A module that
	// uses svckit lists it as a tool (go.mod's tool directive), so that go mod tidy keeps
	// the go.sum lines go generate needs to build it.
	svckitTool = svckitModule + "/cmd/svckit"
)

// templates holds the scaffold: one text/template per file, named as the file it makes
// with a .tmpl suffix.
//
//go:embed scaffold/*.tmpl
var templates embed.FS

// runNew is `svckit new [-module PATH] [-svckit DIR] NAME`.
func runNew(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("svckit new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	module := fs.String("module", "", "module path when NAME becomes a new module (default: NAME)")
	local := fs.String("svckit", "", "directory of a svckit checkout to depend on through a replace directive (default: the release this command was installed at, else the checkout it was built from)")
	with := fs.String("with", "", "batteries, comma-separated: store (its own SQL store with migrations), bus (events on NATS JetStream), outbox (events written in the store's transactions; implies store and bus), peer:NAME (a gRPC connection to the service NAME; repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: svckit new [-module PATH] [-svckit DIR] [-with store,bus,outbox,peer:NAME] NAME

Scaffolds the service NAME in the directory NAME: an interface with one example method,
an implementation stub, generated transports, a main with config, health, metrics,
tracing and graceful shutdown, a test and a Dockerfile. With -with, the main also wires
the batteries, the service gets example methods that use them, and the test runs them on
real engines (a SQLite file, an embedded NATS server).

Outside a Go module, NAME becomes a new module. Inside one, the service becomes a package
of that module, and its go.mod gets what the service needs: a requirement on svckit (with
a replace directive to a local checkout when svckit is not a released version) and
svckit's command as a tool, for go generate. Either way go mod tidy runs, so go generate,
go vet and go test work at once. On any failure nothing is left behind.`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bat, err := parseWith(*with)
	if err != nil {
		fmt.Fprintf(stderr, "svckit new: -with: %v\n", err)
		return 2
	}
	if err := scaffold(ctx, newOptions{name: fs.Arg(0), module: *module, local: *local, batteries: bat}, stdout); err != nil {
		fmt.Fprintf(stderr, "svckit new: %v\n", err)
		return 1
	}
	return 0
}

// newOptions are svckit new's arguments.
type newOptions struct {
	name      string    // the service's directory, as given
	module    string    // module path of a new module; default: the directory's name
	local     string    // svckit checkout for a replace directive; default: see findSvckit
	batteries batteries // what -with asks for
}

// batteries are the parts of svckit a scaffolded service uses (svckit new -with).
type batteries struct {
	Store  bool   // its own SQL store (App.Store) with migrations
	Bus    bool   // the event bus (App.Bus)
	Outbox bool   // the transactional outbox (App.Outbox); implies Store and Bus
	Peers  []peer // services it calls (App.Dial)
}

// peer is another service a scaffolded service calls.
type peer struct {
	Name  string // the service's name, as given: users, user-profiles
	Field string // the Go name of its config field's prefix: Users, UserProfiles
	Param string // the Go name of its connection: usersConn, userProfilesConn
	Env   string // the environment variable of its addresses: USERS_GRPC_ADDRS
}

// parseWith parses -with: comma-separated store, bus, outbox and peer:NAME.
func parseWith(s string) (batteries, error) {
	var b batteries
	seen := map[string]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if seen[item] {
			return b, fmt.Errorf("%s given twice", item)
		}
		seen[item] = true
		switch name, isPeer := strings.CutPrefix(item, "peer:"); {
		case item == "store":
			b.Store = true
		case item == "bus":
			b.Bus = true
		case item == "outbox":
			b.Outbox, b.Store, b.Bus = true, true, true
		case isPeer:
			p, err := newPeer(name)
			if err != nil {
				return b, err
			}
			b.Peers = append(b.Peers, p)
		default:
			return b, fmt.Errorf("unknown battery %q: want store, bus, outbox or peer:NAME", item)
		}
	}
	return b, nil
}

// newPeer names the parts of a peer from its service name: lower-case letters, digits
// and dashes, starting with a letter.
func newPeer(name string) (peer, error) {
	ok := name != "" && name[0] >= 'a' && name[0] <= 'z'
	for _, r := range name {
		ok = ok && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}
	if !ok || strings.HasSuffix(name, "-") || strings.Contains(name, "--") {
		return peer{}, fmt.Errorf("peer:%s: a service name is lower-case letters, digits and single dashes, starting with a letter", name)
	}
	var field strings.Builder
	for _, part := range strings.Split(name, "-") {
		field.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	f := field.String()
	return peer{
		Name:  name,
		Field: f,
		Param: strings.ToLower(f[:1]) + f[1:] + "Conn",
		Env:   strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_GRPC_ADDRS",
	}, nil
}

// scaffoldData fills the templates.
type scaffoldData struct {
	Name       string // service name: the directory's base name
	Pkg        string // Go package name
	ImportPath string // import path of the service package
	RelDir     string // the service directory relative to the module root, "." for a new module
	batteries
}

// Batteries reports whether the service uses any battery: then main has a config struct.
func (d scaffoldData) Batteries() bool { return d.Store || d.Bus || len(d.Peers) > 0 }

// GRPCName is the protobuf package and service of the scaffolded interface, in the form
// buf lint's STANDARD rules want: a versioned package and a Service suffix
// (user-profiles → userprofiles.v1.UserProfilesService).
func (d scaffoldData) GRPCName() string {
	var b strings.Builder
	up := true
	for _, r := range d.Name {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			up = true
			continue
		case b.Len() == 0 && unicode.IsDigit(r):
			b.WriteString("S")
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return d.Pkg + ".v1." + b.String() + "Service"
}

// Stream is the name of the service's event stream.
func (d scaffoldData) Stream() string { return strings.ToUpper(d.Pkg) }

// NewParams is the parameter list of the service's New.
func (d scaffoldData) NewParams() string {
	var ps []string
	if d.Store {
		ps = append(ps, "st *store.Store")
	}
	if d.Outbox {
		ps = append(ps, "ob *outbox.Outbox")
	} else if d.Bus {
		ps = append(ps, "bus pubsub.Publisher")
	}
	for _, p := range d.Peers {
		ps = append(ps, p.Param+" grpc.ClientConnInterface")
	}
	return strings.Join(ps, ", ")
}

// NewArgs is the argument list of a call of New, in main and the test.
func (d scaffoldData) NewArgs() string {
	var as []string
	for _, p := range strings.Split(d.NewParams(), ", ") {
		if name, _, ok := strings.Cut(p, " "); ok {
			as = append(as, name)
		}
	}
	return strings.Join(as, ", ")
}

// NewFields is the composite literal's fields that New fills in.
func (d scaffoldData) NewFields() string {
	var fs []string
	for _, a := range strings.Split(d.NewArgs(), ", ") {
		if a != "" {
			fs = append(fs, a+": "+a)
		}
	}
	return strings.Join(fs, ", ")
}

// scaffoldFiles maps each file of the scaffold, relative to the service directory, to its
// template.
func scaffoldFiles(d scaffoldData) map[string]string {
	files := map[string]string{
		"service.go":                            "service.go.tmpl",
		"impl.go":                               "impl.go.tmpl",
		"service_test.go":                       "service_test.go.tmpl",
		filepath.Join("cmd", d.Name, "main.go"): "main.go.tmpl",
		"Dockerfile":                            "Dockerfile.tmpl",
	}
	if d.Store {
		files[filepath.Join("migrations", "001_init.sql")] = "001_init.sql.tmpl"
	}
	return files
}

// execTemplate runs the scaffold template name on d; Go source comes out gofmt'ed.
func execTemplate(name string, d scaffoldData) ([]byte, error) {
	t, err := template.ParseFS(templates, "scaffold/"+name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	if !strings.HasSuffix(name, ".go.tmpl") {
		return b.Bytes(), nil
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("template %s: %w\n%s", name, err, b.Bytes())
	}
	return src, nil
}

// scaffold writes the service. A new module is written into a temporary directory beside
// the target and renamed at the end; inside a module the service directory is removed and
// go.mod and go.sum are restored on any failure.
func scaffold(ctx context.Context, o newOptions, stdout io.Writer) (err error) {
	dir, err := filepath.Abs(o.name)
	if err != nil {
		return err
	}
	d := scaffoldData{Name: filepath.Base(dir), Pkg: packageName(filepath.Base(dir)), batteries: o.batteries}
	if !token.IsIdentifier(d.Pkg) {
		return fmt.Errorf("%q does not make a Go package name; use letters and digits", o.name)
	}
	if err := checkTarget(dir, o.name); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	if st, err := os.Stat(parent); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: the parent directory does not exist", o.name)
	}
	modRoot, modPath, err := findModule(parent)
	if err != nil {
		return err
	}
	if modRoot == "" {
		if o.module == "" {
			o.module = d.Name
		}
		d.ImportPath, d.RelDir = o.module, "."
		dep, err := findSvckit(o.local)
		if err != nil {
			return err
		}
		if err := newModule(ctx, dir, d, dep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s (module %s; %s)\n", o.name, d.ImportPath, dep)
	} else {
		if o.module != "" {
			return fmt.Errorf("-module: %s is inside the module %s (%s); the service becomes a package of it", o.name, modPath, modRoot)
		}
		rel, err := filepath.Rel(modRoot, dir)
		if err != nil {
			return err
		}
		d.RelDir = filepath.ToSlash(rel)
		d.ImportPath = modPath + "/" + d.RelDir
		added, err := addToModule(ctx, modRoot, modPath, dir, d, o.local)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s (package %s)\n", o.name, d.ImportPath)
		if added != "" {
			fmt.Fprintf(stdout, "%s's go.mod: %s\n", modPath, added)
		}
	}
	fmt.Fprintf(stdout, "\n  cd %s\n  go test ./...\n", o.name)
	if req := d.required(); len(req) > 0 {
		fmt.Fprintf(stdout, "  go run ./cmd/%s -help    # its settings; it needs %s\n", d.Name, strings.Join(req, " and "))
	} else {
		fmt.Fprintf(stdout, "  go run ./cmd/%s          # HTTP :8080, gRPC :8081, admin :9090\n", d.Name)
	}
	fmt.Fprintln(stdout, "\nEdit service.go to change the API, then run go generate ./...; write the logic in impl.go.")
	return nil
}

// required lists the environment variables the service's command cannot start without.
func (d scaffoldData) required() []string {
	var req []string
	if d.Bus {
		req = append(req, "NATS_URL")
	}
	for _, p := range d.Peers {
		req = append(req, p.Env)
	}
	return req
}

// checkTarget refuses a target that exists and is not an empty directory.
func checkTarget(dir, name string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !st.IsDir():
		return fmt.Errorf("%s exists and is not a directory", name)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s exists and is not empty", name)
	}
	return nil
}

// newModule makes the module of a new service in a temporary directory beside dir, runs
// go mod tidy and the generator there, and renames it to dir.
func newModule(ctx context.Context, dir string, d scaffoldData, dep svckitDep) (err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+d.Name+".svckit-new-")
	if err != nil {
		return fmt.Errorf("making a temporary directory beside %s: %w", d.Name, err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module %s\n\ngo 1.26\n\nrequire %s %s\n", d.ImportPath, svckitModule, dep.Version)
	if dep.Local != "" {
		fmt.Fprintf(&gomod, "\nreplace %s => %s\n", svckitModule, dep.Local)
	}
	fmt.Fprintf(&gomod, "\ntool %s\n", svckitTool)
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte(gomod.String()), 0o644); err != nil {
		return err
	}
	if err := writeService(ctx, tmp, tmp, d, true); err != nil {
		return err
	}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		if err := os.Remove(dir); err != nil { // empty: checked before
			return fmt.Errorf("%s: %w", d.Name, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("moving the new service into place: %w", err)
	}
	return nil
}

// addToModule writes the service into dir inside the module at modRoot, after making sure
// the module requires svckit and lists its command as a tool. It returns what it added to
// go.mod, for the user. On failure it removes what it wrote and restores go.mod and go.sum.
func addToModule(ctx context.Context, modRoot, modPath, dir string, d scaffoldData, local string) (added string, err error) {
	existed := false
	if _, err := os.Stat(dir); err == nil {
		existed = true
	}
	gomodPath, gosumPath := filepath.Join(modRoot, "go.mod"), filepath.Join(modRoot, "go.sum")
	origMod, err := os.ReadFile(gomodPath)
	if err != nil {
		return "", err
	}
	origSum, sumErr := os.ReadFile(gosumPath)
	defer func() {
		if err == nil {
			return
		}
		if existed {
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				_ = os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		} else {
			_ = os.RemoveAll(dir)
		}
		_ = os.WriteFile(gomodPath, origMod, 0o644)
		if sumErr == nil {
			_ = os.WriteFile(gosumPath, origSum, 0o644)
		} else {
			_ = os.Remove(gosumPath)
		}
	}()
	tidy := modPath != svckitModule // svckit's own module has what a service needs
	if tidy {
		edits, what, err := moduleEdits(ctx, modRoot, local)
		if err != nil {
			return "", err
		}
		if len(edits) > 0 {
			if err := goCommand(ctx, modRoot, append([]string{"mod", "edit"}, edits...)...); err != nil {
				return "", err
			}
			added = what
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return added, writeService(ctx, modRoot, dir, d, tidy)
}

// moduleEdits returns the go mod edit flags that make the module at modRoot require svckit
// (replaced by a local checkout unless svckit is a release) and list its command as a tool,
// and a description of them.
func moduleEdits(ctx context.Context, modRoot, local string) (edits []string, what string, err error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json")
	cmd.Dir = modRoot
	out, err := cmd.Output()
	if err != nil {
		return nil, "", fmt.Errorf("go mod edit -json in %s: %w", modRoot, err)
	}
	var mf struct {
		Require []struct{ Path string }
		Replace []struct{ Old struct{ Path string } }
		Tool    []struct{ Path string }
	}
	if err := json.Unmarshal(out, &mf); err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", filepath.Join(modRoot, "go.mod"), err)
	}
	has := func(paths []string, p string) bool {
		for _, x := range paths {
			if x == p {
				return true
			}
		}
		return false
	}
	var reqs, repls, tools []string
	for _, r := range mf.Require {
		reqs = append(reqs, r.Path)
	}
	for _, r := range mf.Replace {
		repls = append(repls, r.Old.Path)
	}
	for _, t := range mf.Tool {
		tools = append(tools, t.Path)
	}
	var whats []string
	if !has(reqs, svckitModule) && !has(repls, svckitModule) {
		dep, err := findSvckit(local)
		if err != nil {
			return nil, "", err
		}
		edits = append(edits, "-require="+svckitModule+"@"+dep.Version)
		if dep.Local != "" {
			edits = append(edits, "-replace="+svckitModule+"="+dep.Local)
		}
		whats = append(whats, "requires "+dep.String())
	}
	if !has(tools, svckitTool) {
		edits = append(edits, "-tool="+svckitTool)
		whats = append(whats, "tool "+svckitTool+" (for go generate)")
	}
	return edits, strings.Join(whats, ", "), nil
}

// writeService writes the service's files into dir and runs the generator there. With
// tidy, go mod tidy runs in modRoot before the generator, so that it can load the package,
// and after it, to add what the generated code imports.
func writeService(ctx context.Context, modRoot, dir string, d scaffoldData, tidy bool) error {
	if err := writeFiles(dir, d); err != nil {
		return err
	}
	if tidy {
		if err := goCommand(ctx, modRoot, "mod", "tidy"); err != nil {
			return err
		}
	}
	if err := generate(ctx, dir); err != nil {
		return err
	}
	if !tidy {
		return nil
	}
	return goCommand(ctx, modRoot, "mod", "tidy")
}

// writeFiles writes the scaffold's hand-written files into dir.
func writeFiles(dir string, d scaffoldData) error {
	for rel, name := range scaffoldFiles(d) {
		b, err := execTemplate(name, d)
		if err != nil {
			return err
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// generate runs svckit gen on the service package in dir.
func generate(ctx context.Context, dir string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	out, err := gen.Generate(dir, gen.Options{})
	if err != nil {
		return fmt.Errorf("generating: %w", err)
	}
	if _, err := gen.Write(out); err != nil {
		return fmt.Errorf("generating: %w", err)
	}
	return nil
}

// goCommand runs the go command in dir with the user's environment; its output is part of
// the error.
func goCommand(ctx context.Context, dir string, args ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// packageName makes a Go package name of a service name: lower case, letters and digits.
func packageName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' && b.Len() > 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// findModule returns the root and path of the module containing dir, or "" outside any.
func findModule(dir string) (root, path string, err error) {
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			for _, l := range strings.Split(string(data), "\n") {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
					return d, strings.Trim(strings.TrimSpace(rest), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s has no module line", filepath.Join(d, "go.mod"))
		}
		if filepath.Dir(d) == d {
			return "", "", nil
		}
	}
}

// svckitDep is how a scaffolded module depends on svckit: a released version, or a local
// checkout through a replace directive.
type svckitDep struct {
	Version string // the required version; v0.0.0 with Local
	Local   string // absolute directory of a svckit checkout, or ""
}

// String describes the dependency for the user.
func (d svckitDep) String() string {
	if d.Local != "" {
		return svckitModule + " => " + d.Local + " (a replace directive to a local checkout)"
	}
	return svckitModule + " " + d.Version
}

// findSvckit decides which svckit a scaffolded module depends on: the checkout local if
// given; else the release this command was built from (go install …@VERSION or go run
// …@VERSION: a module downloaded with a checksum); else the checkout this command was
// built from, through a replace directive.
func findSvckit(local string) (svckitDep, error) {
	if local != "" {
		abs, err := filepath.Abs(local)
		if err != nil {
			return svckitDep{}, err
		}
		if !isSvckitCheckout(abs) {
			return svckitDep{}, fmt.Errorf("-svckit %s: not a svckit checkout (no go.mod with module %s)", local, svckitModule)
		}
		return svckitDep{Version: "v0.0.0", Local: abs}, nil
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		mods := append([]*debug.Module{&bi.Main}, bi.Deps...)
		for _, m := range mods {
			if m.Path == svckitModule && m.Replace == nil && m.Sum != "" && strings.HasPrefix(m.Version, "v") {
				return svckitDep{Version: m.Version}, nil
			}
		}
	}
	if dir := checkoutDir(); dir != "" {
		return svckitDep{Version: "v0.0.0", Local: dir}, nil
	}
	return svckitDep{}, errors.New("cannot tell which svckit to use: pass -svckit DIR (a checkout), or install svckit at a version with go install github.com/svckit/svckit/cmd/svckit@VERSION")
}

// checkoutDir returns the svckit checkout this command was built from, if it still exists
// (not with -trimpath, which hides it).
func checkoutDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(file) {
		return ""
	}
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	if !isSvckitCheckout(root) {
		return ""
	}
	return root
}

// isSvckitCheckout reports whether dir holds svckit's go.mod.
func isSvckitCheckout(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`) == svckitModule
		}
	}
	return false
}
