package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDevNothingToRun: svckit dev where there is nothing to run says what to do and exits
// with status 2, before building or starting anything.
func TestDevNothingToRun(t *testing.T) {
	t.Setenv("GOWORK", "off")
	root := t.TempDir()
	for name, content := range map[string]string{
		"empty/.keep":            "",
		"tools/go.mod":           "module example.com/tools\n\ngo 1.26\n",
		"tools/cmd/tool/main.go": "package main\n\nfunc main() {}\n",
		"badyaml/svckit.yaml":    "name: x\nservices: [{name: a}]\n",
		"goodyaml/svckit.yaml":   "name: x\nservices: [{name: a, package: ./a}]\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		wd   string
		args []string
		code int
		want []string // parts of stderr
	}{
		{"no argument, empty directory", "empty", nil, 2,
			[]string{"no svckit.yaml and no service main packages in the current directory.", "svckit new NAME", "svckit dev DIR"}},
		{"no argument, a module without services", "tools", nil, 2,
			[]string{"no svckit.yaml and no service main packages in the current directory."}},
		{"a directory without services", ".", []string{"tools"}, 2,
			[]string{"no svckit.yaml and no service main packages in tools.", "svckit new NAME"}},
		{"a missing directory", ".", []string{"missing"}, 2, []string{"svckit dev: system directory: stat missing: no such file or directory"}},
		{"a file, not a directory", ".", []string{"tools/go.mod"}, 2, []string{"svckit dev: manifest: open tools/go.mod/svckit.yaml: not a directory"}},
		{"an invalid svckit.yaml", ".", []string{"badyaml"}, 2, []string{"services[0] (a).package: is required"}},
		{"an unknown service's replicas", ".", []string{"-replicas", "b=2", "goodyaml"}, 2, []string{`no service "b" in the manifest`}},
		{"two directories", ".", []string{"a", "b"}, 2, []string{"want at most one directory"}},
		{"help", ".", []string{"-h"}, 0, []string{"usage: svckit dev [flags] [DIR]", "docs/dev.md"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Chdir(filepath.Join(root, tc.wd))
			var out, errb bytes.Buffer
			code := run(append([]string{"dev", "-state-dir", t.TempDir(), "-listen", "127.0.0.1:0"}, tc.args...), &out, &errb)
			if code != tc.code {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			for _, want := range tc.want {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, errb.String())
				}
			}
			if strings.Contains(out.String(), "building") {
				t.Errorf("built something:\n%s", out.String())
			}
		})
	}
}

// TestDevCPUProfile: -cpuprofile writes svckit dev's profile when it stops, also when it
// stops early, and an unwritable path is an error before anything runs.
func TestDevCPUProfile(t *testing.T) {
	t.Setenv("GOWORK", "off")
	dir := t.TempDir()
	prof := filepath.Join(dir, "dev.pprof")
	var stdout, stderr bytes.Buffer
	if code := runDev([]string{"-cpuprofile", prof, dir}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d, want 2 (nothing to run): %s", code, stderr.String())
	}
	if st, err := os.Stat(prof); err != nil {
		t.Fatal(err)
	} else if st.Size() == 0 {
		t.Fatal("empty profile")
	}
	stderr.Reset()
	if code := runDev([]string{"-cpuprofile", filepath.Join(dir, "no", "such", "dir", "p"), dir}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "-cpuprofile") {
		t.Fatalf("exit %d, stderr %q; want 2 and the flag named", code, stderr.String())
	}
}

// TestDevMemProfile: -memprofile writes a heap profile that pprof reads, names the flag when
// it cannot, and leaves nothing waiting when svckit dev stops before any signal.
func TestDevMemProfile(t *testing.T) {
	t.Setenv("GOWORK", "off")
	dir := t.TempDir()
	prof := filepath.Join(dir, "heap.pprof")
	if err := writeHeapProfile(prof); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(prof)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f) // a pprof profile: gzipped protobuf
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("inuse_space")) || !bytes.Contains(raw, []byte("alloc_space")) {
		t.Error("not a heap profile: no inuse_space and alloc_space sample types")
	}
	if err := writeHeapProfile(filepath.Join(dir, "no", "such", "dir", "p")); err == nil || !strings.Contains(err.Error(), "-memprofile") {
		t.Errorf("unwritable path: %v", err)
	}
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- runDev([]string{"-memprofile", filepath.Join(dir, "never.pprof"), dir}, &stdout, &stderr)
	}()
	select {
	case code := <-done:
		if code != 2 {
			t.Fatalf("exit %d, want 2 (nothing to run): %s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("svckit dev with -memprofile did not return")
	}
}
