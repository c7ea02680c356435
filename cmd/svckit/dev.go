package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// runDev is `svckit dev [flags] [DIR]`: the whole system of DIR/svckit.yaml (default
// examples/shop) as supervised processes with an embedded NATS server and the dashboard.
func runDev(args []string, stdout, stderr io.Writer) int {
	f, err := devrun.ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if _, err := os.Stat(f.Dir); err != nil {
		fmt.Fprintf(stderr, "svckit dev: %v (run from the repository root, or name the system's directory)\n", err)
		return 2
	}
	opts := devrun.Options{
		Dir: f.Dir, Replicas: f.Replicas, Out: stdout, Color: !f.NoColor && isTerminal(stdout),
		Quiet: f.Quiet, StateDir: f.StateDir, Listen: f.Listen,
		Handler: func(sys *devrun.System) http.Handler {
			return dashboard.Handler(sys, dashboard.WithOpenAPIFunc(dashboard.OpenAPIFiles(sys.Manifest)),
				dashboard.WithDevTokenFunc(func(context.Context) (string, error) { return sys.DevToken("dev-user") }))
		},
	}
	err = devrun.RunUntilSignal(context.Background(), opts, func(sys *devrun.System) {
		fmt.Fprintf(stdout, "\n  dashboard  %s\n", sys.URL)
		if u := sys.PublicURL(); u != "" {
			fmt.Fprintf(stdout, "  entry      %s\n", u)
		}
		if tok, err := sys.DevToken("dev-user"); err == nil {
			fmt.Fprintf(stdout, "  token      %s\n", tok)
			fmt.Fprintf(stdout, "             (subject dev-user, 24 h: curl -H \"Authorization: Bearer $TOKEN\" …)\n")
		}
		fmt.Fprintf(stdout, "  NATS       %s\n\n  Ctrl-C stops everything.\n\n", sys.NATS.ClientURL())
	})
	if err != nil {
		fmt.Fprintf(stderr, "svckit dev: %v\n", err)
		return 1
	}
	return 0
}

// isTerminal reports whether w is a character device (a terminal), for colours.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
