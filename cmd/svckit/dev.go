package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/svckit/svckit/internal/dashboard"
	"github.com/svckit/svckit/internal/devrun"
)

// runDev is `svckit dev [flags] [DIR]`: the whole system of DIR/svckit.yaml, or of the
// service main packages under DIR when it has none, as supervised processes with an
// embedded NATS server and the dashboard. DIR defaults to the current directory, or to
// examples/shop in svckit's own repository.
func runDev(args []string, stdout, stderr io.Writer) int {
	f, err := devrun.ParseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if f.CPUProfile != "" {
		stop, err := startCPUProfile(f.CPUProfile)
		if err != nil {
			fmt.Fprintf(stderr, "svckit dev: %v\n", err)
			return 2
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintf(stderr, "svckit dev: %v\n", err)
			}
		}()
	}
	if f.MemProfile != "" {
		// Written when the stop signal comes, while the system (its stores) is still
		// held, and waited for before exiting.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		written := make(chan error, 1)
		go func() {
			if _, ok := <-sigs; ok {
				written <- writeHeapProfile(f.MemProfile)
			}
			close(written)
		}()
		defer func() {
			signal.Stop(sigs)
			close(sigs)
			if err := <-written; err != nil {
				fmt.Fprintf(stderr, "svckit dev: %v\n", err)
			}
		}()
	}
	ctx := context.Background()
	m, err := devrun.Load(ctx, f.Dir)
	if errors.Is(err, devrun.ErrNoServices) {
		where := f.Dir
		if filepath.Clean(where) == "." {
			where = "the current directory"
		}
		fmt.Fprintf(stderr, "svckit dev: no %s and no service main packages in %s.\n"+
			"Create a service with `svckit new NAME`, or run `svckit dev DIR` on a system's directory.\n",
			devrun.ManifestFile, where)
		return 2
	}
	if err == nil {
		err = m.SetReplicas(f.Replicas)
	}
	if err != nil {
		fmt.Fprintf(stderr, "svckit dev: %v\n", err)
		return 2
	}
	// The dashboard kills and calls services only for the page opened with this run's
	// secret (the printed URL) or a request with it in X-Svckit-Secret.
	secret := dashboard.NewSecret()
	opts := devrun.Options{
		Dir: f.Dir, Manifest: m, Replicas: f.Replicas, Out: stdout,
		Color: !f.NoColor && isTerminal(stdout), Interactive: isTerminal(stdout),
		Quiet: f.Quiet, StateDir: f.StateDir, Listen: f.Listen, Reload: !f.NoReload,
		ExtraEnv: traceBodiesEnv(f.TraceBodies),
		Handler: func(sys *devrun.System) http.Handler {
			return dashboard.Handler(sys, dashboard.WithOpenAPIFunc(dashboard.OpenAPIFiles(sys.Manifest)),
				dashboard.WithDevTokenFunc(func(context.Context) (string, error) { return sys.DevToken("dev-user") }),
				dashboard.WithSecret(secret))
		},
	}
	devrun.LimitMemory(os.Getenv) // a soft limit, so the heap does not grow to twice the stores
	err = devrun.RunUntilSignal(ctx, opts, func(sys *devrun.System) {
		fmt.Fprintf(stdout, "\n  dashboard  %s\n", dashboard.SecretURL(sys.URL, secret))
		fmt.Fprintf(stdout, "             (open this link: killing and calling services need its secret; curl: -H \"%s: %s\")\n",
			dashboard.SecretHeader, secret)
		if u := sys.PublicURL(); u != "" {
			fmt.Fprintf(stdout, "  entry      %s\n", u)
		}
		if tok, err := sys.DevToken("dev-user"); err == nil {
			fmt.Fprintf(stdout, "  token      %s\n", tok)
			fmt.Fprintf(stdout, "             (subject dev-user, 24 h: curl -H \"Authorization: Bearer $TOKEN\" …)\n")
		}
		fmt.Fprintf(stdout, "  NATS       %s  (authorization on: a user per service; admin URL in %s)\n", sys.NATS.PlainURL(), sys.NATSAdminFile)
		for _, in := range sys.Instances {
			if st := in.Status(); st.State == devrun.StateFailed {
				fmt.Fprintf(stdout, "  failed     %s: %s\n             (starts again when its source or %s entry changes, or from the dashboard)\n",
					in.ID, strings.ReplaceAll(st.Reason, "\n", " / "), devrun.ManifestFile)
			}
		}
		fmt.Fprintf(stdout, "\n  Ctrl-C stops everything.\n\n")
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

// traceBodiesEnv is the services' environment for -trace-bodies.
func traceBodiesEnv(on bool) []string {
	if on {
		return []string{"TRACE_BODIES=true"}
	}
	return nil
}

// writeHeapProfile writes the process's heap profile (after a collection, so that the
// in-use figures are current) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("-memprofile: %w", err)
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("-memprofile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("-memprofile: %w", err)
	}
	return nil
}

// startCPUProfile writes svckit dev's CPU profile to path until the returned stop runs.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		return nil
	}, nil
}
