//go:build integration

package gen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The checks with other tools of what svckit gen writes. They need the Go module proxy
// (buf and oapi-codegen are installed with `go install module@version`) and, for the TypeScript and
// Redocly checks, npx and the npm registry; each fails, naming what is missing, when its
// tool cannot be had. SVCKIT_BUF and SVCKIT_OAPI_CODEGEN name prebuilt binaries to use
// instead (buf takes minutes to build on a busy machine), and SVCKIT_GRPCURL a grpcurl.
const (
	bufModule         = "github.com/bufbuild/buf/cmd/buf@v1.75.0"
	oapiCodegenModule = "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2"
	oapiRuntime       = "github.com/oapi-codegen/runtime v1.9.0"
	openapiTypescript = "openapi-typescript@7.13.0"
	typescript        = "typescript@5.9.3"
	redoclyCLI        = "@redocly/cli@2.77.0"
	grpcurlModule     = "github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
)

// tool returns the command line of a Go tool: the binary in env, or module installed once
// into a temporary GOBIN (go run would link it again for every call).
func tool(t *testing.T, env, module string) []string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return []string{p}
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing %s (needs the Go module proxy; or set %s to a binary): %v\n%s", module, env, err, out)
	}
	name, _, _ := strings.Cut(module[strings.LastIndexByte(module, '/')+1:], "@")
	return []string{filepath.Join(gobin, name)}
}

func run(t *testing.T, dir string, argv ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// exampleDocs lists the OpenAPI documents of examples/.
func exampleDocs(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(moduleRoot(t), "examples", "*", "*", "*.openapi.json"))
	if err != nil || len(docs) < 6 {
		t.Fatalf("found %v (%v), want the 6 documents of examples/", docs, err)
	}
	return docs
}

// TestExternalToolsBufLint lints every generated .proto of the module (examples and the
// golden corpus) with buf's MINIMAL rules, each protobuf Go package's directory being the
// module root, and the .proto of a service made by svckit new with the STANDARD rules.
func TestExternalToolsBufLint(t *testing.T) {
	root := moduleRoot(t)
	buf := tool(t, "SVCKIT_BUF", bufModule)
	if out, err := run(t, root, append(buf, "--version")...); err != nil {
		t.Fatalf("buf is not available (%s; set SVCKIT_BUF to a buf binary): %v\n%s", bufModule, err, out)
	}
	lint := func(t *testing.T, pbDir, rules string) {
		t.Helper()
		args := append(append([]string(nil), buf...), "lint", "--config", fmt.Sprintf(`{"version":"v2","lint":{"use":[%q]}}`, rules))
		out, err := run(t, pbDir, args...)
		if err != nil {
			t.Errorf("buf lint %s (%s): %v\n%s", rules, pbDir, err, out)
		}
	}
	var dirs []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, "_pb_gen.go") && !strings.Contains(p, "/transport/") {
			dirs = append(dirs, filepath.Dir(p))
		}
		return err
	})
	if err != nil || len(dirs) < 15 {
		t.Fatalf("found %d protobuf packages (%v)", len(dirs), err)
	}
	for _, d := range dirs {
		rel, _ := filepath.Rel(root, d)
		t.Run("MINIMAL/"+rel, func(t *testing.T) { lint(t, d, "MINIMAL") })
	}
	t.Run("STANDARD/svckit-new", func(t *testing.T) {
		tmp := t.TempDir()
		if out, err := run(t, root, "go", "run", "./cmd/svckit", "new", "-module", "example.com/userprofiles",
			"-svckit", root, "-with", "store,bus,outbox", filepath.Join(tmp, "user-profiles")); err != nil {
			t.Fatalf("svckit new: %v\n%s", err, out)
		}
		lint(t, filepath.Join(tmp, "user-profiles", "pb"), "STANDARD")
	})
}

// TestExternalToolsOpenAPIClients generates a client from every document of examples/
// with oapi-codegen's default configuration (client and models) and compiles it, and with
// openapi-typescript, type-checked by tsc --strict.
func TestExternalToolsOpenAPIClients(t *testing.T) {
	docs := exampleDocs(t)
	t.Run("oapi-codegen", func(t *testing.T) {
		dir := t.TempDir()
		gomod := "module example.com/oapi\n\ngo 1.26\n\nrequire " + oapiRuntime + "\n"
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
			t.Fatal(err)
		}
		gen := tool(t, "SVCKIT_OAPI_CODEGEN", oapiCodegenModule)
		for _, doc := range docs {
			name := strings.TrimSuffix(filepath.Base(doc), ".openapi.json")
			if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := fmt.Sprintf("package: %s\ngenerate:\n  client: true\n  models: true\noutput: %s\n", name, filepath.Join(dir, name, "client.gen.go"))
			cfgPath := filepath.Join(dir, name, "oapi-codegen.yaml")
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := run(t, moduleRoot(t), append(gen, "-config", cfgPath, doc)...); err != nil {
				t.Fatalf("oapi-codegen (%s; set SVCKIT_OAPI_CODEGEN to a binary) on %s: %v\n%s", oapiCodegenModule, doc, err, out)
			}
		}
		if out, err := run(t, dir, "go", "mod", "tidy"); err != nil {
			t.Fatalf("go mod tidy: %v\n%s", err, out)
		}
		for _, doc := range docs {
			name := strings.TrimSuffix(filepath.Base(doc), ".openapi.json")
			if out, err := run(t, dir, "go", "build", "./"+name); err != nil {
				t.Errorf("the oapi-codegen client of %s does not compile: %v\n%s", doc, err, out)
			}
		}
	})
	t.Run("openapi-typescript", func(t *testing.T) {
		npx := npxOrFail(t)
		dir := t.TempDir()
		var outs []string
		for _, doc := range docs {
			out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(doc), ".openapi.json")+".d.ts")
			if b, err := run(t, dir, npx, "--yes", openapiTypescript, doc, "-o", out); err != nil {
				t.Fatalf("openapi-typescript on %s (needs the npm registry): %v\n%s", doc, err, b)
			}
			outs = append(outs, out)
		}
		args := append([]string{npx, "--yes", "-p", typescript, "tsc", "--noEmit", "--strict"}, outs...)
		if b, err := run(t, dir, args...); err != nil {
			t.Errorf("tsc --strict on the openapi-typescript output: %v\n%s", err, b)
		}
	})
}

// TestExternalToolsRedocly lints every document of examples/ with Redocly's recommended
// rules: no error (its warnings, such as info-license, are allowed).
func TestExternalToolsRedocly(t *testing.T) {
	npx := npxOrFail(t)
	for _, doc := range exampleDocs(t) {
		out, err := run(t, t.TempDir(), npx, "--yes", redoclyCLI, "lint", "--extends=recommended", doc)
		if err != nil {
			t.Errorf("redocly lint %s: %v\n%s", doc, err, out)
		}
	}
}

func npxOrFail(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("npx")
	if err != nil {
		t.Fatalf("npx is not installed (apt-get install -y npm): %v", err)
	}
	return p
}

// TestExternalToolsGRPCurlDescribe serves generated services with svckit's reflection on
// loopback and runs grpcurl describe on them: the doc comments of the Go interface, its
// methods and a struct's fields are in what grpcurl prints.
func TestExternalToolsGRPCurlDescribe(t *testing.T) {
	grpcurl := tool(t, "SVCKIT_GRPCURL", grpcurlModule)
	for _, tc := range reflectionCases {
		t.Run(tc.name, func(t *testing.T) {
			cc := serveWithReflection(t, tc.service, tc.register)
			src := goDocs(t, tc.source)
			describe := func(symbol string) string {
				t.Helper()
				out, err := run(t, t.TempDir(), append(grpcurl, "-plaintext", "-max-time", "30", cc.Target(), "describe", symbol)...)
				if err != nil {
					t.Fatalf("grpcurl describe %s (%s; or set SVCKIT_GRPCURL to a binary): %v\n%s", symbol, grpcurlModule, err, out)
				}
				t.Logf("grpcurl describe %s:\n%s", symbol, out)
				return out
			}
			want := map[string][]string{tc.service: {src[tc.iface], src[tc.iface+"."+tc.method]}}
			if tc.message != "" {
				want[tc.message] = []string{src[tc.goStruct+"."+tc.goField]}
			}
			for symbol, docs := range want {
				out := describe(symbol)
				for _, doc := range docs {
					if doc == "" {
						t.Fatalf("%s: no Go doc comment to look for", symbol)
					}
					// grpcurl prints a comment as protoc has it: "// " before each line.
					comment := "// " + strings.ReplaceAll(strings.TrimSuffix(doc, "\n"), "\n", "\n// ")
					comment = strings.ReplaceAll(comment, "// \n", "//\n")
					if !strings.Contains(out, comment) {
						t.Errorf("grpcurl describe %s does not show %q:\n%s", symbol, comment, out)
					}
				}
			}
		})
	}
}
