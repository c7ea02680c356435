package devrun

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestExecName(t *testing.T) {
	for pkg, want := range map[string]string{
		"./cmd/catalog":  "catalog",
		"./cmd/catalog/": "catalog",
		"github.com/svckit/svckit/examples/addsvc": "addsvc",
		".":                    "",
		"..":                   "",
		"example.com/tool/v2":  "",
		"example.com/tool/vet": "vet",
	} {
		if got := execName(pkg); got != want {
			t.Errorf("execName(%q) = %q, want %q", pkg, got, want)
		}
	}
}

// TestBuild builds services the way Start does: packages with a clear binary name in one
// go build (two services of one package share its binary), the others ("." here, and two
// spellings of one package, which would both be named addsvc) one by one.
func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	s := &System{Logs: NewLogStore(0), opts: Options{Out: io.Discard, Quiet: true}, Manifest: &Manifest{
		Name: "t", Dir: "../../examples/addsvc", Services: []Service{
			{Name: "dot", Package: "."},
			{Name: "full", Package: "github.com/svckit/svckit/examples/shop/cmd/payments"},
			{Name: "again", Package: "github.com/svckit/svckit/examples/shop/cmd/payments"},
			{Name: "rel", Package: "../addsvc"},
			{Name: "abs", Package: "github.com/svckit/svckit/examples/addsvc"},
		}}}
	dir := t.TempDir()
	bins, err := s.build(context.Background(), dir, s.Manifest.Services)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"dot":   filepath.Join(dir, "svc", "dot"),
		"full":  filepath.Join(dir, "payments"),
		"again": filepath.Join(dir, "payments"),
		"rel":   filepath.Join(dir, "svc", "rel"),
		"abs":   filepath.Join(dir, "svc", "abs"),
	}
	for name, bin := range want {
		if bins[name] != bin {
			t.Errorf("binary of %s = %s, want %s", name, bins[name], bin)
		}
		st, err := os.Stat(bin)
		if err != nil || st.Mode()&0o111 == 0 {
			t.Fatalf("binary of %s: %v %v", name, st, err)
		}
	}
	again, err := s.build(context.Background(), dir, s.Manifest.Services)
	if err != nil {
		t.Fatal(err)
	}
	for name, bin := range want {
		if again[name] != bin {
			t.Errorf("second build: binary of %s = %s, want %s", name, again[name], bin)
		}
	}
}
