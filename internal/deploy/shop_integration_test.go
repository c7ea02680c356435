//go:build integration

package deploy

import (
	"debug/elf"
	"testing"
)

// TestShopDockerBuild builds every shop service with the exact go build line of the
// shop's Dockerfile and checks that each binary is static and stripped, as the distroless
// image needs, and that it reports the same settings as a default build.
func TestShopDockerBuild(t *testing.T) {
	sys, bins := buildShop(t, true)
	for name, bin := range bins {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: has an ELF interpreter: dynamically linked", name)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s: needs shared libraries %v", name, libs)
		}
		if f.Section(".symtab") != nil {
			t.Errorf("%s: has a symbol table; -ldflags -s was not applied", name)
		}
		f.Close()
	}
	files, err := Render(sys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if stale, err := files.Check(shopTree); err != nil || len(stale) > 0 {
		t.Errorf("the manifests of the Dockerfile's binaries differ from deploy/k8s: %v %v", stale, err)
	}
}
