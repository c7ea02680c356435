package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/svckit/svckit/internal/compat"
	"github.com/svckit/svckit/internal/gen"
)

// runGen is `svckit gen [-type Name] [-check] [dir...]`.
func runGen(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("svckit gen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	types := flags.String("type", "", "comma-separated interfaces to generate (default: those marked //svckit:gen, or the only exported one)")
	check := flags.Bool("check", false, "write nothing; exit 1 and name the files that are stale (for CI)")
	verbose := flags.Bool("v", false, "print the files written and the time taken")
	breaking := flags.String("breaking", "", "write nothing; compare with the interfaces at this git revision (or saved .proto/.openapi.json documents) and exit 1 naming each change that breaks callers (docs/compat.md)")
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: svckit gen [-type Name[,Name]] [-check | -breaking REF] [-v] [dir | dir/... ...]\n\nGenerates *_gen.go, pb/*_pb_gen.go, a .proto and an OpenAPI document for the service\ninterfaces of the Go package in each dir (default: the current directory, or $GOFILE's\ndirectory under go generate). dir/... means every package below dir generated before\n(with a pbconv_gen.go), so `svckit gen -check ./...` checks a whole module in CI.\nHand-written files are never overwritten.")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	var dirs []string
	for _, a := range flags.Args() {
		root, ok := strings.CutSuffix(a, "...")
		if !ok {
			dirs = append(dirs, a)
			continue
		}
		found, err := gen.GeneratedPackages(filepath.Clean(root))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		dirs = append(dirs, found...)
	}
	if len(flags.Args()) == 0 {
		dirs = []string{"."}
	}
	var opts gen.Options
	if *types != "" {
		opts.Types = strings.Split(*types, ",")
	}
	if *breaking != "" {
		return compat.Run(context.Background(), *breaking, dirs, compat.Options{Types: opts.Types, Verbose: *verbose}, stdout, stderr)
	}
	status := 0
	for _, dir := range dirs {
		start := time.Now()
		files, err := gen.Generate(dir, opts)
		if err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
			continue
		}
		if *check {
			stale, err := gen.Check(files)
			if err != nil {
				fmt.Fprintln(stderr, err)
				status = 1
			}
			for _, p := range stale {
				fmt.Fprintf(stderr, "%s: stale; run svckit gen\n", rel(p))
				status = 1
			}
			if *verbose && len(stale) == 0 {
				fmt.Fprintf(stdout, "%s: up to date (%s)\n", dir, time.Since(start).Round(time.Millisecond))
			}
			continue
		}
		changed, err := gen.Write(files)
		if *verbose {
			for _, p := range changed {
				fmt.Fprintf(stdout, "wrote %s\n", rel(p))
			}
			fmt.Fprintf(stdout, "%s: %d files in %s\n", dir, len(files), time.Since(start).Round(time.Millisecond))
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
		}
	}
	return status
}

func rel(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
