//go:build integration

package compat_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svckit/svckit/internal/compat"
	"github.com/svckit/svckit/internal/gen"
)

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, src, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGitRevision is svckit gen -breaking HEAD~1 end to end: a module in a new git
// repository, v1 committed, a field removed and committed, the check run against HEAD~1
// (breaking, with the removal at HEAD~1's line) and against HEAD (compatible).
func TestGitRevision(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitIn(t, repo, "init", "-q")
	gitIn(t, repo, "config", "user.name", "compat test")
	gitIn(t, repo, "config", "user.email", "compat@example.com")
	gitIn(t, repo, "config", "commit.gpgsign", "false")
	if err := os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module example.com/shop\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "testdata/base/svc.go", filepath.Join(repo, "shop", "svc.go"))
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-q", "-m", "v1")
	copyFile(t, "testdata/cases/removed_field/svc.go", filepath.Join(repo, "shop", "svc.go"))
	gitIn(t, repo, "commit", "-q", "-am", "v2: Item.Name removed")
	// A package new since HEAD~1 is all additions.
	copyFile(t, "testdata/cases/same/svc.go", filepath.Join(repo, "newsvc", "svc.go"))
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "commit", "-q", "-m", "v3: a new service")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pkg := filepath.Join(repo, "shop")
	var stdout, stderr bytes.Buffer
	if code := compat.Run(ctx, "HEAD~2", []string{pkg}, compat.Options{}, &stdout, &stderr); code != 1 {
		t.Fatalf("against HEAD~2: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	for _, want := range []string{
		"HEAD~2:shop/svc.go:28: Item (shop.Service.Get response): field name (number 2) removed\n",
		filepath.Join(pkg, "svc.go") + ":27: Item (shop.Service.Get response): field price: number changed from 3 to 2 (add fields at the end)\n",
		pkg + ": 4 breaking change(s) against HEAD~2\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, &stderr)
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := compat.Run(ctx, "HEAD", []string{pkg, filepath.Join(repo, "newsvc")}, compat.Options{Verbose: true}, &stdout, &stderr); code != 0 {
		t.Fatalf("against HEAD: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	stdout.Reset()
	stderr.Reset()
	if code := compat.Run(ctx, "HEAD~1", []string{filepath.Join(repo, "newsvc")}, compat.Options{Verbose: true}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "service shop.Service added (compatible)") {
		t.Errorf("a new package against HEAD~1: exit %d, want 0 and the service added\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	// A package of another module than the first directory's is an error, not an
	// empty old side.
	if err := os.WriteFile(filepath.Join(repo, "newsvc", "go.mod"), []byte("module example.com/newsvc\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := compat.Run(ctx, "HEAD", []string{pkg, filepath.Join(repo, "newsvc")}, compat.Options{}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "is not in the module extracted at HEAD") {
		t.Errorf("a package of another module: exit %d, stderr %q", code, &stderr)
	}
	stderr.Reset()
	if code := compat.Run(ctx, "no-such-ref", []string{pkg}, compat.Options{}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "no-such-ref is not a revision of the repository") {
		t.Errorf("an unknown revision: exit %d, stderr %q", code, &stderr)
	}
	stderr.Reset()
	if code := compat.Run(ctx, "--output=/tmp/x", []string{pkg}, compat.Options{}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "is not a git revision") {
		t.Errorf("an option as a revision: exit %d, stderr %q", code, &stderr)
	}
}

// shopServices are the packages of the reference system.
var shopServices = []string{"catalog", "gateway", "notifications", "orders", "payments"}

// TestShopAtHEAD compares the shop's five services at HEAD with their own committed
// .proto and OpenAPI documents (no findings at all: the reader of saved documents and
// the Go model agree on real services), and with the working tree where the working
// tree's package is HEAD's (no findings).
func TestShopAtHEAD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	shop := filepath.Join("..", "..", "examples", "shop")
	snap, err := compat.OpenRef(ctx, shop, "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snap.Close() })
	for _, svc := range shopServices {
		dir := filepath.Join(shop, svc)
		t.Run(svc, func(t *testing.T) {
			t.Parallel()
			old, err := snap.Load(dir, gen.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(old.Services) == 0 {
				t.Fatalf("%s at HEAD has no services", svc)
			}
			saved, err := compat.LoadFiles([]string{snap.Dir(dir)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fs := compat.Compare(old, saved); len(fs) != 0 {
				t.Errorf("%s at HEAD against its committed documents: %v", svc, fs)
			}
			if fs := compat.Compare(saved, old); len(fs) != 0 {
				t.Errorf("%s's committed documents against its Go source at HEAD: %v", svc, fs)
			}
			// The contract comes from the package's Go files other than tests.
			diff := exec.Command("git", "diff", "--quiet", "HEAD", "--", "*.go", ":(exclude)*_test.go", ":(exclude)*_gen.go")
			diff.Dir = dir
			if diff.Run() != nil {
				t.Logf("%s: the working tree differs from HEAD (uncommitted work): compared at HEAD only", svc)
				return
			}
			cur := load(t, dir)
			if fs := compat.Compare(old, cur); len(fs) != 0 {
				t.Errorf("%s against itself at HEAD: %v", svc, fs)
			}
		})
	}
}
