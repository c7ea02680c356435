package compat_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/svckit/svckit/internal/compat"
	"github.com/svckit/svckit/internal/gen"
)

// saveDocs writes the .proto and OpenAPI document the generator makes for the package in
// dir into a new directory, as a saved contract.
func saveDocs(t *testing.T, dir string, withOpenAPI bool) string {
	t.Helper()
	files, err := gen.Generate(dir, gen.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	for _, f := range files {
		if strings.HasSuffix(f.Path, ".proto") || (withOpenAPI && strings.HasSuffix(f.Path, ".openapi.json")) {
			if err := os.WriteFile(filepath.Join(out, filepath.Base(f.Path)), f.Content, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func whats(fs []compat.Finding, brk bool) []string {
	var out []string
	for _, f := range fs {
		if f.Break == brk {
			out = append(out, f.What)
		}
	}
	slices.Sort(out)
	return out
}

// TestSavedDocuments reads the generated .proto and OpenAPI document of testdata/base as
// a saved contract: it equals the contract read from the Go package, and compared with
// the changed cases it finds what the Go package at the old side finds.
func TestSavedDocuments(t *testing.T) {
	t.Parallel()
	saved, err := compat.LoadFiles([]string{saveDocs(t, "testdata/base", true)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := load(t, "testdata/base")
	if fs := compat.Compare(saved, base); len(fs) != 0 {
		t.Errorf("saved documents against their own package: %v", fs)
	}
	if fs := compat.Compare(base, saved); len(fs) != 0 {
		t.Errorf("the package against its saved documents: %v", fs)
	}
	protoOnly, err := compat.LoadFiles([]string{saveDocs(t, "testdata/base", false)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"removed_field", "renamed_field", "field_number", "required", "route", "auth", "grpc_name", "stream", "removed_method"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cur := load(t, filepath.Join("testdata/cases", name))
			// Saved documents carry no NATS subjects: those are compared from Go only.
			want := slices.DeleteFunc(compat.Compare(base, cur), func(f compat.Finding) bool { return strings.Contains(f.What, "NATS") })
			got := compat.Compare(saved, cur)
			if !slices.Equal(whats(got, true), whats(want, true)) || !slices.Equal(whats(got, false), whats(want, false)) {
				t.Errorf("from the saved documents:\n%v\nfrom the Go package:\n%v", got, want)
			}
			// Without the OpenAPI document routes and auth are unknown: the rest is the same.
			var wantGRPC []string
			for _, w := range whats(want, true) {
				if !strings.Contains(w, "HTTP") && !strings.Contains(w, "must now present") {
					wantGRPC = append(wantGRPC, w)
				}
			}
			if g := whats(compat.Compare(protoOnly, cur), true); !slices.Equal(g, wantGRPC) {
				t.Errorf("from the .proto alone:\n got %q\nwant %q", g, wantGRPC)
			}
		})
	}
}

// TestBadDocuments: a saved document that is not what svckit gen writes is an error
// naming the file and line, never a panic.
func TestBadDocuments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, file, src, want string
	}{
		{"proto2", "a.proto", "syntax = \"proto2\";\n", `a.proto:1: syntax "proto2": only proto3 is compared`},
		{"truncated", "a.proto", "syntax = \"proto3\";\npackage p;\nmessage M {\n  string a = 1;\n", "a.proto:4: unexpected end of file"},
		{"bad number", "a.proto", "syntax = \"proto3\";\nmessage M {\n  string a = x;\n}\n", `a.proto:3: field a: bad number "x"`},
		{"zero number", "a.proto", "syntax = \"proto3\";\nmessage M {\n  string a = 0;\n}\n", `a.proto:3: field a: bad number "0"`},
		{"unknown message", "a.proto", "syntax = \"proto3\";\nservice S {\n  rpc M(In) returns (Out);\n}\n", "a.proto:3: unknown message In"},
		{"nested enum", "a.proto", "syntax = \"proto3\";\nmessage M {\n  enum E { A = 0; }\n}\n", "a.proto:3: enum inside message M is not compared"},
		{"top-level enum", "a.proto", "syntax = \"proto3\";\nenum E { A = 0; }\n", `a.proto:2: "enum" is not compared`},
		{"twice", "a.proto", "syntax = \"proto3\";\nmessage M {}\nmessage M {}\n", "a.proto:3: message M declared twice"},
		{"bad option", "a.proto", "syntax = \"proto3\";\nmessage M {\n  string a = 1 [json_name = \"x\" deprecated = true];\n}\n", `a.proto:3: want , or ] in field options, found "deprecated"`},
		{"unterminated comment", "a.proto", "syntax = \"proto3\";\n/* never ends\n", "a.proto:2: unterminated comment"},
		{"not json", "a.openapi.json", "{", "a.openapi.json: not an OpenAPI document"},
		{"not a document", "a.txt", "x", "a.txt: want a .proto or an .openapi.json document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			p := filepath.Join(dir, tc.file)
			if err := os.WriteFile(p, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			paths := []string{p}
			if !strings.HasSuffix(tc.file, ".proto") {
				good := filepath.Join(dir, "ok.proto")
				if err := os.WriteFile(good, []byte("syntax = \"proto3\";\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, good)
			}
			_, err := compat.LoadFiles(paths, func(s string) string { return filepath.Base(s) })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestLargeDocument: a document over the bound is refused before it is read.
func TestLargeDocument(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "big.proto")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(9 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = compat.LoadFiles([]string{p}, nil)
	if err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("got %v, want the size refused", err)
	}
}

// TestRunSavedDocuments is svckit gen -breaking DIR with saved documents as the old side:
// exit 1 with the breaks on stderr, 0 for the same package (its changes listed with -v),
// 2 without an old side.
func TestRunSavedDocuments(t *testing.T) {
	t.Parallel()
	saved := saveDocs(t, "testdata/base", true)
	for _, tc := range []struct {
		name, against string
		dirs          []string
		code          int
		stdout        []string
		stderr        []string
	}{
		{"breaking", saved, []string{"testdata/cases/renamed_field"}, 1, nil, []string{
			`testdata/cases/renamed_field/svc.go:27: Item (shop.Service.Get response): field name renamed to title (JSON "title", was "name")`,
			"testdata/cases/renamed_field: 1 breaking change(s) against " + saved,
		}},
		{"compatible", saved, []string{"testdata/cases/added_method"}, 0, []string{
			"testdata/cases/added_method/svc.go:22: method shop.Service.Delete added (compatible)",
			"testdata/cases/added_method: compatible with " + saved + " (1 change(s), ",
		}, nil},
		{"two documents", filepath.Join(saved, "shop.proto") + string(os.PathListSeparator) + filepath.Join(saved, "shop.openapi.json"), []string{"testdata/cases/route"}, 1, nil, []string{
			"testdata/cases/route/svc.go:14: method shop.Service.Get: HTTP route changed from GET /items/{id} to GET /v2/items/{id}",
		}},
		{"no old side", "", []string{"testdata/base"}, 2, nil, []string{"want a git revision or saved"}},
		{"not a package", saved, []string{"testdata/nonexistent"}, 1, nil, []string{"testdata/nonexistent: not a directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			code := compat.Run(t.Context(), tc.against, tc.dirs, compat.Options{Verbose: true}, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, &stdout, &stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, &stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, &stderr)
				}
			}
		})
	}
}
