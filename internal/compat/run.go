package compat

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svckit/svckit/internal/gen"
)

// Options configures [Run].
type Options struct {
	Types   []string // the interfaces to compare, as svckit gen -type
	Verbose bool     // also print the compatible changes and the time taken
}

// Run is `svckit gen -breaking AGAINST dir...`: it compares the contract of the package
// in each dir with the one at AGAINST, a git revision or saved documents (a .proto, an
// .openapi.json, or a directory holding them), prints each breaking change as
// "file:line: what" on stderr and returns the exit status: 0 when every package is
// compatible, 1 when one is not or cannot be read, 2 for bad arguments.
func Run(ctx context.Context, against string, dirs []string, opts Options, stdout, stderr io.Writer) int {
	if against == "" {
		fmt.Fprintln(stderr, "svckit gen -breaking: want a git revision or saved .proto/.openapi.json documents")
		return 2
	}
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	gopts := gen.Options{Types: opts.Types}
	status := 0
	report := func(dir string, took time.Duration, fs []Finding) {
		n := 0
		for _, f := range fs {
			if f.Break {
				n++
				fmt.Fprintln(stderr, f)
			} else if opts.Verbose {
				fmt.Fprintln(stdout, f, "(compatible)")
			}
		}
		if n > 0 {
			status = 1
			fmt.Fprintf(stderr, "%s: %d breaking change(s) against %s\n", dir, n, against)
		} else if opts.Verbose {
			fmt.Fprintf(stdout, "%s: compatible with %s (%d change(s), %s)\n", dir, against, len(fs), took.Round(time.Millisecond))
		}
	}
	if paths, ok := savedPaths(against); ok {
		// Saved documents: the packages together are the new side.
		start := time.Now()
		old, err := LoadFiles(paths, relWD)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		cur := &Contract{HTTPKnown: true}
		for _, dir := range dirs {
			pkg, err := gen.Load(dir, gopts)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			cur.Services = append(cur.Services, FromPackage(pkg, relWD).Services...)
		}
		report(strings.Join(dirs, " "), time.Since(start), Compare(old, cur))
		return status
	}
	start := time.Now()
	snap, err := OpenRef(ctx, dirs[0], against)
	if err != nil {
		fmt.Fprintln(stderr, "svckit gen -breaking:", err)
		return 1
	}
	defer snap.Close()
	if opts.Verbose {
		fmt.Fprintf(stdout, "%s is %.12s, extracted in %s\n", against, snap.Commit, time.Since(start).Round(time.Millisecond))
	}
	// Each package is loaded twice, at REF and in the working tree, one load after the
	// other: go list, which most of a load is, runs its own work in parallel already,
	// and loading concurrently measured no faster here (docs/compat.md), for more CPU.
	for _, dir := range dirs {
		start := time.Now()
		old, err := snap.Load(dir, gopts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
			continue
		}
		pkg, err := gen.Load(dir, gopts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
			continue
		}
		report(dir, time.Since(start), Compare(old, FromPackage(pkg, relWD)))
	}
	return status
}

// savedPaths splits against into paths (separated as in $PATH) and reports whether
// each exists: then against names saved documents, not a git revision.
func savedPaths(against string) ([]string, bool) {
	paths := strings.Split(against, string(os.PathListSeparator))
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, false
		}
	}
	return paths, true
}

// relWD makes a path relative to the working directory when it is below it.
func relWD(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
