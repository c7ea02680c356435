package gen

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the generated files of the golden corpus and the expected errors")

// goldenCases are the packages of the corpus under testdata/golden and their options.
// Their generated files are committed: they are the golden files.
var goldenCases = map[string]Options{
	"basic":      {},
	"shapes":     {},
	"routes":     {},
	"stream":     {},
	"multi":      {},
	"typeflag":   {Types: []string{"B"}},
	"aliases":    {},
	"protonames": {},
	"bench50":    {},
	"ledger":     {}, // the NATS transport: TestNATSRoundTrip serves and calls it
	// Two packages named users, in protobuf packages acme.users.v1 and globex.users.v1,
	// linked together by TestTwinsLinkTogether.
	"twins/acme/users":   {},
	"twins/globex/users": {},
}

// TestGolden generates every package of the corpus and compares the output with the
// committed files; -update rewrites them.
func TestGolden(t *testing.T) {
	for name, opts := range goldenCases {
		t.Run(name, func(t *testing.T) {
			dir := goldenDir(name)
			files, err := Generate(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if _, err := Write(files); err != nil {
					t.Fatal(err)
				}
				return
			}
			stale, err := Check(files)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range stale {
				t.Errorf("%s is stale (run go test ./internal/gen -update):\n%s", p, firstDiff(t, p, files))
			}
		})
	}
}

// goldenDir is the directory of a corpus package.
func goldenDir(name string) string {
	if name == "bench50" {
		return "testdata/bench50"
	}
	return "testdata/golden/" + name
}

// firstDiff describes where the file on disk and the generated one differ.
func firstDiff(t *testing.T, path string, files []File) string {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	for _, f := range files {
		if f.Path != path {
			continue
		}
		a, b := strings.Split(string(old), "\n"), strings.Split(string(f.Content), "\n")
		for i := 0; i < len(a) && i < len(b); i++ {
			if a[i] != b[i] {
				return fmt.Sprintf("line %d:\n  have %q\n  want %q", i+1, a[i], b[i])
			}
		}
		return fmt.Sprintf("%d lines, want %d", len(a), len(b))
	}
	return "no longer generated"
}

// TestGoldenBuilds vets (and so type-checks and compiles) the generated code of the
// corpus.
func TestGoldenBuilds(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("runs go vet")
	}
	args := []string{"vet"}
	for name := range goldenCases {
		args = append(args, "./"+goldenDir(name), "./"+goldenDir(name)+"/pb")
	}
	cmd := exec.Command("go", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet on the generated corpus: %v\n%s", err, out)
	}
}

// TestErrors checks that every unsupported shape in testdata/errors is reported with its
// position, method and reason, all of them in one run.
func TestErrors(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "errors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", "errors", e.Name())
			_, err := Generate(dir, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T, want an ErrorList: %v", err, err)
			}
			got := err.Error() + "\n"
			wantFile := filepath.Join(dir, "errors.golden")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestTypeFlag checks -type: it picks interfaces that are not marked, and naming an
// interface the package lacks is an error, not a silently smaller output.
func TestTypeFlag(t *testing.T) {
	dir := goldenDir("typeflag")
	pkg, err := Load(dir, Options{Types: []string{"A", "B"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Services) != 2 || pkg.Services[0].Name != "A" || pkg.Services[1].Name != "B" {
		t.Errorf("-type A,B: services %+v", pkg.Services)
	}
	_, err = Generate(dir, Options{Types: []string{"B", "Missing", "A"}})
	want := "testdata/golden/typeflag/typeflag.go:2: -type Missing: package typeflag has no interface Missing"
	var list ErrorList
	if !errors.As(err, &list) || err.Error() != want {
		t.Errorf("-type B,Missing,A: %v\nwant %s", err, want)
	}
}

// TestDeterministic generates the same package twice and compares the output.
func TestDeterministic(t *testing.T) {
	for _, name := range []string{"shapes", "routes", "multi", "aliases"} {
		dir := filepath.Join("testdata", "golden", name)
		a, err := Generate(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Generate(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) {
			t.Fatalf("%s: %d files, then %d", name, len(a), len(b))
		}
		for i := range a {
			if a[i].Path != b[i].Path || !bytes.Equal(a[i].Content, b[i].Content) {
				t.Errorf("%s: %s differs between two runs", name, a[i].Path)
			}
		}
	}
}

// TestCommittedTreeIsCurrent is `svckit gen -check ./...` on the module: the committed
// generated files of every generated package match what the generator produces now.
func TestCommittedTreeIsCurrent(t *testing.T) {
	dirs, err := GeneratedPackages("../..")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirs, filepath.Join("..", "..", "examples", "addsvc", "addsvc")) {
		t.Fatalf("examples/addsvc/addsvc not found among %v", dirs)
	}
	for _, dir := range dirs {
		files, err := Generate(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		stale, err := Check(files)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range stale {
			t.Errorf("%s is stale: run go run ./cmd/svckit gen %s (%s)", p, dir, firstDiff(t, p, files))
		}
	}
}

// TestNeverOverwritesHandWritten checks that Write refuses to replace a file without the
// generator's header, and that regeneration removes generated files that are obsolete.
func TestNeverOverwritesHandWritten(t *testing.T) {
	dir := t.TempDir()
	hand := filepath.Join(dir, "service_gen.go")
	if err := os.WriteFile(hand, []byte("package x\n// mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write([]File{{Path: hand, Content: []byte(header + "\npackage x\n")}})
	if err == nil || !strings.Contains(err.Error(), "not written by svckit gen") {
		t.Fatalf("Write over a hand-written file: %v", err)
	}
	if b, _ := os.ReadFile(hand); string(b) != "package x\n// mine\n" {
		t.Fatalf("hand-written file changed: %q", b)
	}
	old := filepath.Join(dir, "old_gen.go")
	if err := os.WriteFile(old, []byte(header+"\npackage x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "new_gen.go")
	stale, err := Check([]File{{Path: keep, Content: []byte(header + "\npackage x\n")}})
	if err != nil || len(stale) != 2 {
		t.Fatalf("Check = %v, %v; want the missing and the obsolete file", stale, err)
	}
	if _, err := Write([]File{{Path: keep, Content: []byte(header + "\npackage x\n")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("obsolete generated file not removed: %v", err)
	}
	if _, err := os.Stat(hand); err != nil {
		t.Errorf("hand-written file removed: %v", err)
	}
}

func TestNaming(t *testing.T) {
	for _, tc := range []struct{ in, kebab, snake, lower, goName string }{
		{"GetProfile", "get-profile", "get_profile", "getProfile", "GetProfile"},
		{"UserID", "user-id", "user_id", "userID", "UserID"},
		{"HTTPServer", "http-server", "http_server", "httpServer", "HTTPServer"},
		{"id", "id", "id", "id", "ID"},
		{"userUrl", "user-url", "user_url", "userUrl", "UserURL"},
		{"A", "a", "a", "a", "A"},
		{"ID", "id", "id", "id", "ID"},
	} {
		if got := kebab(tc.in); got != tc.kebab {
			t.Errorf("kebab(%q) = %q, want %q", tc.in, got, tc.kebab)
		}
		if got := snake(tc.in); got != tc.snake {
			t.Errorf("snake(%q) = %q, want %q", tc.in, got, tc.snake)
		}
		if got := lowerCamel(tc.in); got != tc.lower {
			t.Errorf("lowerCamel(%q) = %q, want %q", tc.in, got, tc.lower)
		}
		if got := goName(tc.in); got != tc.goName {
			t.Errorf("goName(%q) = %q, want %q", tc.in, got, tc.goName)
		}
	}
}

// TestGenerate50Timing logs how long generating a 50-method interface takes (the target
// is under a second; there is no timed assertion). The first Generate warms the go
// command's caches; the second is what a developer's regeneration costs.
func TestGenerate50Timing(t *testing.T) {
	dir := filepath.Join("testdata", "bench50")
	for _, run := range []string{"cold", "warm"} {
		start := time.Now()
		files, err := Generate(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: generated %d files for 50 methods in %s", run, len(files), time.Since(start).Round(time.Millisecond))
	}
}

// BenchmarkGenerate50 measures generating the 50-method interface in testdata/bench50,
// loading the package included.
func BenchmarkGenerate50(b *testing.B) {
	b.ReportAllocs()
	dir := filepath.Join("testdata", "bench50")
	for b.Loop() {
		if _, err := Generate(dir, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLoad(t *testing.T) {
	pkg, err := Load(filepath.Join("testdata", "golden", "routes"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Services) != 1 || pkg.Services[0].GRPCName != "routes.Profiles" {
		t.Fatalf("services: %+v", pkg.Services)
	}
	var routes []string
	for _, m := range pkg.Services[0].Methods {
		routes = append(routes, m.HTTPMethod+" "+m.HTTPPath)
	}
	want := "GET /profiles/{id},GET /profiles,DELETE /profiles/{id},PUT /profiles/{id}/name,POST /orgs/{org}/members/{n},GET /files/{path...}, ,POST /profiles/touch,GET /things/{id}"
	if got := strings.Join(routes, ","); got != want {
		t.Errorf("routes:\n got %s\nwant %s", got, want)
	}
}
