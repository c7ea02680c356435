package compat

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/svckit/svckit/internal/gen"
)

// Bounds of a revision's extraction.
const (
	maxTreeBytes = 1 << 30   // all files of the module at the revision
	maxFileBytes = 256 << 20 // one file
	gitTimeout   = 2 * time.Minute
)

// Snapshot is a Go module as it was at a git revision, extracted into a temporary
// directory so that the generator can load its packages. Close removes it.
type Snapshot struct {
	Ref    string // the revision as given
	Commit string // the commit it names
	top    string // the repository's top directory (the working tree)
	mod    string // the module's directory in the working tree
	modRel string // ... below top
	tmp    string // the extraction: tmp/<path of the module below top>
}

// OpenRef extracts the Go module that holds dir as it was at the git revision ref (a
// commit, branch, tag or an expression such as HEAD~1) with git archive. Only committed
// files are read; a revision that does not exist is an error that says so.
func OpenRef(ctx context.Context, dir, ref string) (*Snapshot, error) {
	if ref == "" || strings.HasPrefix(ref, "-") {
		return nil, fmt.Errorf("%q is not a git revision", ref)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	mod, err := moduleRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	out, err := git(ctx, mod, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("%s: not in a git repository: %w", dir, err)
	}
	top, err := filepath.EvalSymlinks(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, err
	}

	out, err = git(ctx, top, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err != nil {
		return nil, fmt.Errorf("%s is not a revision of the repository at %s", ref, top)
	}
	s := &Snapshot{Ref: ref, Commit: strings.TrimSpace(string(out)), top: top, mod: mod}
	s.tmp, err = os.MkdirTemp("", "svckit-compat-")
	if err != nil {
		return nil, err
	}
	modRel, err := filepath.Rel(top, mod)
	if err != nil {
		s.Close()
		return nil, err
	}
	s.modRel = modRel
	args := []string{"archive", "--format=tar", s.Commit}
	if modRel != "." {
		args = append(args, "--", filepath.ToSlash(modRel))
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = top
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 4096}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		s.Close()
		return nil, fmt.Errorf("git archive: %w", err)
	}
	uerr := untar(pipe, s.tmp)
	if uerr != nil {
		_ = cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, pipe)
	}
	werr := cmd.Wait()
	if uerr != nil {
		s.Close()
		return nil, fmt.Errorf("extracting %s at %s: %w", modRel, ref, uerr)
	}
	if werr != nil {
		s.Close()
		return nil, fmt.Errorf("git archive %s: %w: %s", ref, werr, strings.TrimSpace(stderr.String()))
	}
	return s, nil
}

// moduleRoot is the directory of the go.mod that governs dir, symbolic links resolved.
func moduleRoot(dir string) (string, error) {
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	for mod := dir; ; {
		if _, err := os.Stat(filepath.Join(mod, "go.mod")); err == nil {
			return mod, nil
		}
		parent := filepath.Dir(mod)
		if parent == mod {
			return "", errors.New("not in a Go module")
		}
		mod = parent
	}
}

// Close removes the extraction.
func (s *Snapshot) Close() error {
	if s.tmp == "" {
		return nil
	}
	return os.RemoveAll(s.tmp)
}

// Load reads the contract of the package in dir (a directory of the working tree) as it
// was at the snapshot's revision. A package that did not exist then has an empty
// contract: everything in it is new.
func (s *Snapshot) Load(dir string, opts gen.Options) (*Contract, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if a, err := filepath.EvalSymlinks(abs); err == nil {
		abs = a
	}
	rel, err := filepath.Rel(s.top, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s is outside the repository at %s", dir, s.top)
	}
	if mod, err := moduleRoot(abs); err != nil || mod != s.mod {
		return nil, fmt.Errorf("%s is not in the module extracted at %s (%s): compare it in a run of its own", dir, s.Ref, filepath.ToSlash(s.modRel))
	}
	old := filepath.Join(s.tmp, rel)
	if st, err := os.Stat(old); err != nil || !st.IsDir() {
		return &Contract{Source: s.Ref + ":" + filepath.ToSlash(rel), HTTPKnown: true}, nil
	}
	pkg, err := gen.Load(old, opts)
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %s", filepath.ToSlash(rel), s.Ref, strings.ReplaceAll(err.Error(), s.tmp+string(filepath.Separator), s.Ref+":"))
	}
	return FromPackage(pkg, s.rel), nil
}

// Dir is where the directory dir of the working tree is in the extraction: its
// contents at the snapshot's revision (it may not exist).
func (s *Snapshot) Dir(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return filepath.Join(s.tmp, "nonexistent")
	}
	if a, err := filepath.EvalSymlinks(abs); err == nil {
		abs = a
	}
	rel, err := filepath.Rel(s.top, abs)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return filepath.Join(s.tmp, "nonexistent")
	}
	return filepath.Join(s.tmp, rel)
}

// rel writes a path of the extraction as REF:path-in-the-repository.
func (s *Snapshot) rel(p string) string {
	r, err := filepath.Rel(s.tmp, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return p
	}
	return s.Ref + ":" + filepath.ToSlash(r)
}

func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 4096}
	out, err := cmd.Output()
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("git %s: %w: %s", args[0], err, msg)
		}
		return nil, fmt.Errorf("git %s: %w", args[0], err)
	}
	return out, nil
}

// untar extracts regular files and directories of a tar stream below dir, refusing
// names that leave it and bounding the sizes. Links are skipped: the generator reads Go
// sources, go.mod and go.sum.
func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("%q: a path outside the tree", h.Name)
		}
		dst := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if h.Size > maxFileBytes {
				return fmt.Errorf("%s: %d bytes, more than %d", h.Name, h.Size, maxFileBytes)
			}
			total += h.Size
			if total > maxTreeBytes {
				return fmt.Errorf("the tree is larger than %d bytes", maxTreeBytes)
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// limited writes at most n bytes to w and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
