package devrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Flags holds the command-line settings of `svckit dev`.
type Flags struct {
	// Dir is the system's directory: the argument, or DefaultDir(".") without one.
	Dir string
	// Replicas are the -replicas overrides, "NAME=N".
	Replicas []string
	// Listen is the address of the dashboard and the OTLP collector.
	Listen string
	// StateDir holds binaries, stores and NATS data ("": Dir/.svckit).
	StateDir string
	// NoColor turns ANSI colours off.
	NoColor bool
	// Quiet prints only svckit dev's own messages.
	Quiet bool
	// NoReload turns off rebuilding and replacing services whose sources change.
	NoReload bool
	// TraceBodies records requests and responses on the services' spans (TRACE_BODIES).
	TraceBodies bool
	// CPUProfile is where svckit dev writes its own CPU profile, from start to stop
	// ("": none), for `go tool pprof`.
	CPUProfile string
	// MemProfile is where svckit dev writes its own heap profile when it stops ("": none),
	// for `go tool pprof`: what it holds after a run, and what it allocated.
	MemProfile string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// ParseFlags parses `svckit dev [flags] [DIR]`.
func ParseFlags(args []string, stderr io.Writer) (Flags, error) {
	fs := flag.NewFlagSet("svckit dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f Flags
	var replicas multiFlag
	fs.Var(&replicas, "replicas", "replica count for a service, NAME=N (repeatable)")
	fs.StringVar(&f.Listen, "listen", "127.0.0.1:7070", "address of the dashboard and the OTLP collector")
	fs.StringVar(&f.StateDir, "state-dir", "", "where binaries, stores and NATS data live (default DIR/.svckit)")
	fs.BoolVar(&f.NoColor, "no-color", false, "no ANSI colours in the output")
	fs.BoolVar(&f.Quiet, "quiet", false, "print only svckit dev's own messages, not the services' logs")
	fs.BoolVar(&f.NoReload, "no-reload", false, "do not rebuild and replace a running service when its sources change")
	fs.BoolVar(&f.TraceBodies, "trace-bodies", false, "record each call's request and response on its span, shown in the dashboard's traces")
	fs.StringVar(&f.CPUProfile, "cpuprofile", "", "write svckit dev's own CPU profile (not the services') to this file when it stops")
	fs.StringVar(&f.MemProfile, "memprofile", "", "write svckit dev's own heap profile (not the services') to this file when it stops")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: svckit dev [flags] [DIR]\n\n"+
			"Runs every service of the system described by DIR/svckit.yaml as supervised processes\n"+
			"with an embedded NATS server and a dashboard. Without svckit.yaml, every package main\n"+
			"under DIR that imports %s is a service. DIR defaults to the current\n"+
			"directory (examples/shop in svckit's own repository). See docs/dev.md.\n\n", SvckitModule)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 1 {
		return f, fmt.Errorf("svckit dev: want at most one directory, got %q", fs.Args())
	}
	if err := loopbackListen(f.Listen); err != nil {
		return f, err
	}
	f.Dir = DefaultDir(".")
	if fs.NArg() == 1 {
		f.Dir = fs.Arg(0)
	}
	f.Replicas = replicas
	return f, nil
}

// RunUntilSignal starts the system, waits until it is ready, calls ready (to print URLs
// and tokens), and runs until SIGINT or SIGTERM, then stops everything gracefully. A
// second signal stops at once.
func RunUntilSignal(ctx context.Context, opts Options, ready func(*System)) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	sys, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	readyCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	readyErr := make(chan error, 1)
	go func() { readyErr <- sys.WaitReady(readyCtx) }()
	select {
	case err := <-readyErr:
		cancel()
		if err != nil && !errors.Is(err, ErrConfig) {
			_ = sys.Stop(context.Background())
			return err
		}
		// Instances that failed with a configuration error wait for a change; the others
		// run, and the dashboard shows them.
		if ready != nil {
			ready(sys)
		}
	case sig := <-sigs:
		cancel()
		sys.printf("%s before the system was ready; stopping", sig)
		return sys.Stop(context.Background())
	}
	sig := <-sigs
	sys.printf("%s: stopping (again to stop at once)", sig)
	stopCtx, stopCancel := context.WithCancel(context.Background())
	defer stopCancel()
	go func() {
		<-sigs
		stopCancel()
	}()
	if err := sys.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// loopbackListen refuses a -listen address other processes of other machines could
// reach: the dashboard shows logs, traces and development tokens, and the collector takes
// spans, to anyone who can connect; its guards (LocalOnly, the run's secret) assume a
// loopback listener.
func loopbackListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("svckit dev: -listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("svckit dev: -listen %q: not a loopback address (127.0.0.1, ::1, localhost): "+
			"the dashboard and collector serve logs, traces and tokens to whoever connects", addr)
	}
	return nil
}
