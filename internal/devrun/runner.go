package devrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svckit/svckit/auth"
	"github.com/svckit/svckit/mtls"
	"github.com/svckit/svckit/natsserver"
)

// DuplicateWindow is the NATS_DUPLICATE_WINDOW svckit dev gives its services unless its
// own environment sets one: the event streams they create drop an event id published
// again within 30 s, the shortest svckit.NATSConfig accepts.
const DuplicateWindow = 30 * time.Second

// Options configures a dev run.
type Options struct {
	// Dir holds the manifest (svckit.yaml); without one, Start runs the services
	// Discover finds below Dir.
	Dir string
	// Manifest, if set, is run instead of what Dir holds (see Load).
	Manifest *Manifest
	// Replicas overrides replica counts: "orders=3".
	Replicas []string
	// Out receives progress and the services' log lines (default os.Stdout).
	Out io.Writer
	// Color prefixes log lines with ANSI colours.
	Color bool
	// Interactive says Out is a terminal: a long build also prints how long it has been
	// running every ten seconds. Otherwise progress lines appear only when something
	// changes (a service built, an instance ready).
	Interactive bool
	// Quiet prints only devrun's own messages, not the services' log lines.
	Quiet bool
	// StateDir holds binaries, stores and the NATS data (default Dir/.svckit).
	StateDir string
	// Listen is the address of the collector and dashboard (default 127.0.0.1:0).
	Listen string
	// Backoff bounds restarts (default DefaultBackoff).
	Backoff Backoff
	// Grace is how long a process may take to stop before SIGKILL (default 20 s).
	Grace time.Duration
	// ExtraEnv is added to every service's environment.
	ExtraEnv []string
	// SourcePoll is how often the sources of a failed service (one that reported a
	// configuration error) and svckit.yaml are checked for changes (default 1 s).
	SourcePoll time.Duration
	// Reload rebuilds a running service when one of its source files changes and puts
	// the new program in place of each instance's process without a gap (see
	// Instance.Restart); a failed build leaves the old processes serving. Without it,
	// only instances that failed with a configuration error are rebuilt.
	Reload bool
	// Handler, if set, is mounted at / on the collector's listener (the dashboard).
	Handler func(*System) http.Handler
}

// System is a running system of services.
type System struct {
	Manifest  *Manifest
	Logs      *LogStore
	Traces    *TraceStore
	Metrics   *MetricsStore
	NATS      *natsserver.Server
	natsUsers map[string]natsserver.User // each service's NATS user
	// NATSAdminFile holds the embedded server's URL with the admin user's credentials.
	NATSAdminFile string
	Instances     []*Instance
	// URL is the collector and dashboard address, "http://127.0.0.1:port".
	URL string
	// Issuer signs development tokens; services validate them with the keys published
	// at URL + "/.well-known/jwks.json" (JWKS_URL in their environment).
	Issuer *auth.DevIssuer
	// CertDir holds the development CA and the services' certificates when the manifest
	// turns mTLS on ("" otherwise).
	CertDir string

	opts    Options
	tls     *mtls.Source // the runner's own certificate under mTLS
	srv     *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started time.Time

	// The terminal printer (not in quiet mode): stopPrinter ends its subscription, and
	// printerD is closed once it has written every line it was given.
	printerD    chan struct{}
	stopPrinter func()
	printing    atomic.Bool
}

// Start builds the services in opts.Dir, starts NATS, the collector and every instance,
// and returns while they run. Stop ends them.
func Start(ctx context.Context, opts Options) (*System, error) {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.Grace == 0 {
		opts.Grace = 20 * time.Second
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.SourcePoll == 0 {
		opts.SourcePoll = time.Second
	}
	m := opts.Manifest
	if m == nil {
		var err error
		if m, err = Load(ctx, opts.Dir); err != nil {
			return nil, err
		}
	}
	if err := m.SetReplicas(opts.Replicas); err != nil {
		return nil, err
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(m.Dir, ".svckit")
	}
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"bin", "data", "nats"} {
		if err := os.MkdirAll(filepath.Join(stateDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
	}
	s := &System{Manifest: m, Logs: NewLogStore(0), Traces: NewTraceStore(0), opts: opts, started: time.Now()}
	s.Metrics = NewMetricsStore(s)
	if m.Discovered {
		s.printDiscovered()
	}
	w := s.newWatcher(filepath.Join(stateDir, "bin"))
	bins, err := s.build(ctx, w.binDir, m.Services)
	if err != nil {
		return nil, err
	}

	s.printf("starting NATS (JetStream in %s)", filepath.Join(stateDir, "nats"))
	// Authorization on: each service logs in as its own user, allowed to publish only its
	// own events; the runner (and the dashboard) use the admin user.
	s.natsUsers = make(map[string]natsserver.User, len(m.Services))
	var users []natsserver.User
	for _, svc := range m.Services {
		u := natsserver.ServiceUser(svc.Name, natsserver.RandomPassword(), svc.PublishSubjects(), svc.Subscribe)
		s.natsUsers[svc.Name] = u
		users = append(users, u)
	}
	// SVCKIT_NATS_SYNC chooses JetStream's sync policy: "always" (fsync every write), an
	// interval such as "1s", or empty for nats-server's default (every 2 minutes).
	natsSync, err := natsserver.ParseSync(os.Getenv("SVCKIT_NATS_SYNC"))
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: SVCKIT_NATS_SYNC: %w", err)
	}
	ns, err := natsserver.Start(ctx, filepath.Join(stateDir, "nats"), natsserver.WithName("svckit-dev"),
		natsserver.WithLogger(slog.New(slog.DiscardHandler)), natsserver.WithUsers(users...), natsserver.WithSync(natsSync))
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	s.NATS = ns
	// The admin's URL, for the nats CLI and other tools: readable by this user only.
	s.NATSAdminFile = filepath.Join(stateDir, "nats-admin.url")
	if err := os.WriteFile(s.NATSAdminFile, []byte(ns.ClientURL()+"\n"), 0o600); err != nil {
		_ = ns.Shutdown(ctx)
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}

	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		_ = ns.Shutdown(ctx)
		return nil, fmt.Errorf("collector listener on %s: %w", opts.Listen, err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.Issuer, err = auth.NewDevIssuer("svckit-dev", m.Name)
	if err != nil {
		_ = ns.Shutdown(ctx)
		return nil, fmt.Errorf("dev token issuer: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/traces", s.Traces.OTLPHandler())
	mux.Handle("GET /.well-known/jwks.json", s.Issuer)
	if opts.Handler != nil {
		mux.Handle("/", opts.Handler(s))
	}
	// Only requests addressed to this listener (no DNS rebinding) and, but for GET and
	// HEAD, not from a page of another origin; see LocalOnly.
	s.srv = &http.Server{Handler: LocalOnly(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()

	if err := s.plan(bins, stateDir); err != nil {
		s.shutdownInfra()
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if !opts.Quiet {
		ch, stop := s.Logs.Subscribe(4096)
		s.printerD, s.stopPrinter = make(chan struct{}), stop
		s.printing.Store(true)
		go s.printLogs(ch)
	}
	for _, in := range s.Instances {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			in.Supervise(runCtx, s.Logs, opts.Backoff, opts.Grace)
		}()
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.Metrics.Run(runCtx, 2*time.Second)
	}()
	go func() {
		defer s.wg.Done()
		w.run(runCtx)
	}()
	return s, nil
}

// printDiscovered says which services Discover found and how to choose others.
func (s *System) printDiscovered() {
	m := s.Manifest
	where := m.Dir
	if where == "." {
		where = "the current directory"
	}
	s.printf("no %s in %s; running the service main packages found there:", ManifestFile, where)
	width := 0
	for _, svc := range m.Services {
		width = max(width, len(svc.Name))
	}
	for _, svc := range m.Services {
		public := ""
		if svc.Public {
			public = "  (public)"
		}
		s.printf("  %-*s  %s%s", width, svc.Name, svc.Package, public)
	}
	s.printf("write %s to choose the services, replicas and environment instead (see docs/dev.md)",
		filepath.Join(m.Dir, ManifestFile))
}

// plural returns "1 service", "2 services" and so on.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// binaries returns the binary each service is built into in dir. One go build command
// builds the packages together — in parallel, loading them once, relinking none whose
// binary is up to date — and names each binary after the last element of its package
// path: dir/NAME. A package whose binary name the path does not make clear (".", a
// major-version suffix) or whose name another package has too is built by a command of
// its own, into dir/svc/SERVICE.
func binaries(services []Service, dir string) map[string]string {
	pkgsNamed := map[string]map[string]bool{} // binary name → packages
	for _, svc := range services {
		if name := execName(svc.Package); name != "" {
			if pkgsNamed[name] == nil {
				pkgsNamed[name] = map[string]bool{}
			}
			pkgsNamed[name][svc.Package] = true
		}
	}
	bins := map[string]string{}
	for _, svc := range services {
		name := execName(svc.Package)
		if name == "" || len(pkgsNamed[name]) > 1 {
			bins[svc.Name] = filepath.Join(dir, "svc", svc.Name)
		} else {
			bins[svc.Name] = filepath.Join(dir, name)
		}
	}
	return bins
}

// build compiles the main packages of services, some or all of the manifest's, into dir
// (see binaries) and returns each service's binary, printing a line as each binary is
// written.
func (s *System) build(ctx context.Context, dir string, services []Service) (map[string]string, error) {
	all := binaries(s.Manifest.Services, dir)
	bins := map[string]string{}
	var together, names []string
	var alone []Service
	for _, svc := range services {
		bins[svc.Name] = all[svc.Name]
		if filepath.Dir(all[svc.Name]) != dir {
			alone = append(alone, svc)
			continue
		}
		names = append(names, svc.Name)
		if !slices.Contains(together, svc.Package) {
			together = append(together, svc.Package)
		}
	}
	if len(alone) > 0 {
		if err := os.MkdirAll(filepath.Join(dir, "svc"), 0o755); err != nil {
			return nil, fmt.Errorf("binaries directory: %w", err)
		}
	}
	p := s.startProgress(services, bins, 10*time.Second)
	err := func() error {
		if len(together) > 0 {
			args := append([]string{"build", "-o", dir + string(filepath.Separator)}, together...)
			if err := s.goBuild(ctx, args, strings.Join(names, ", ")); err != nil {
				return err
			}
		}
		for _, svc := range alone {
			if err := s.goBuild(ctx, []string{"build", "-o", bins[svc.Name], svc.Package}, svc.Name); err != nil {
				return err
			}
		}
		return nil
	}()
	p.finish(err == nil)
	if err != nil {
		return nil, err
	}
	for _, svc := range services {
		if _, err := os.Stat(bins[svc.Name]); err != nil {
			return nil, fmt.Errorf("service %s: go build made no program of %s (is it package main?): %w", svc.Name, svc.Package, err)
		}
	}
	return bins, nil
}

// goBuild runs the go command with args in the manifest's directory; what names the
// services it builds.
func (s *System) goBuild(ctx context.Context, args []string, what string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = s.Manifest.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building %s failed: %w\n%s", what, err, strings.TrimRight(string(out), "\n"))
	}
	return nil
}

// execName returns the name go build gives the binary of package pkg in an output
// directory — the last element of its path — or "" when that is not clear from the path.
func execName(pkg string) string {
	p := strings.TrimSuffix(filepath.ToSlash(pkg), "/")
	elem := path.Base(p)
	if p == "" || elem == "." || elem == ".." || elem == "/" || versionElem.MatchString(elem) {
		return ""
	}
	return elem
}

var versionElem = regexp.MustCompile(`^v[0-9]+$`)

// plan assigns ports and builds every instance's command line and environment.
func (s *System) plan(bins map[string]string, stateDir string) error {
	var tlsEnv map[string][]string
	if s.Manifest.MTLS {
		var err error
		if tlsEnv, err = s.setupMTLS(stateDir); err != nil {
			return err
		}
	}
	type addrs struct{ http, grpc []string }
	peers := map[string]*addrs{}
	for _, svc := range s.Manifest.Services {
		// The runner holds the sockets of a program that can take them (a svckit.App):
		// a restart then refuses no connection, and Restart replaces a process without a
		// gap.
		hold, err := takesSockets(bins[svc.Name])
		if err != nil {
			return fmt.Errorf("service %s: %w", svc.Name, err)
		}
		peers[svc.Name] = &addrs{}
		for r := 1; r <= svc.Replicas; r++ {
			ports, err := freePorts(3)
			if err != nil {
				return err
			}
			in := &Instance{
				Service: svc.Name,
				ID:      fmt.Sprintf("%s-%d", svc.Name, r),
				Bin:     bins[svc.Name],
				Args:    svc.Args,
				Addrs:   map[string]string{"http": ports[0], "grpc": ports[1], "admin": ports[2]},
				state:   StateStarting,
			}
			if hold {
				if err := in.openSockets("http", "grpc", "admin"); err != nil {
					s.printf("%v; its processes bind their own (restarts leave a gap)", err)
				}
			}
			peers[svc.Name].http = append(peers[svc.Name].http, ports[0])
			peers[svc.Name].grpc = append(peers[svc.Name].grpc, ports[1])
			s.Instances = append(s.Instances, in)
		}
	}
	base := append(os.Environ(),
		"NATS_URL="+s.NATS.PlainURL(),
		"PPROF=true", // profiles on the admin port, for the dashboard and go tool pprof
		"OTEL_EXPORTER_OTLP_ENDPOINT="+s.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_SAMPLER=always_on",
		"OTEL_BSP_SCHEDULE_DELAY=500",
		"SVCKIT_DEV=1",
		// A process stopping (Restart's old one, or one sent SIGTERM) serves on for a
		// moment, answering "Connection: close", so HTTP/1.1 clients leave its keep-alive
		// connections between two requests instead of having them closed under a request.
		"DRAIN_DELAY=250ms",
		"JWKS_URL="+s.URL+"/.well-known/jwks.json",
		"JWT_ISSUER=svckit-dev",
		"JWT_AUDIENCE="+s.Manifest.Name,
	)
	// The embedded server keeps about 200 bytes per event id of a stream's duplicate
	// window in this process's heap: 30 s, the shortest a service accepts and still three
	// times what the outbox relay's republishes take, keeps that a quarter of JetStream's
	// 2 minutes, and with it the collection's garbage collections (docs/performance.md).
	if _, ok := os.LookupEnv("NATS_DUPLICATE_WINDOW"); !ok {
		base = append(base, "NATS_DUPLICATE_WINDOW="+DuplicateWindow.String())
	}
	for name, a := range peers {
		env := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		base = append(base, env+"_HTTP_ADDRS="+strings.Join(a.http, ","), env+"_GRPC_ADDRS="+strings.Join(a.grpc, ","))
	}
	base = append(base, s.opts.ExtraEnv...)
	for _, in := range s.Instances {
		svc := s.Manifest.Service(in.Service)
		env := append([]string{}, base...)
		env = append(env,
			"HTTP_ADDR="+in.Addrs["http"], "GRPC_ADDR="+in.Addrs["grpc"], "ADMIN_ADDR="+in.Addrs["admin"],
			"INSTANCE_ID="+in.ID,
			// The fault injection control on the admin port (svckit's /faults), for the
			// dashboard, which reads the token from Env.
			"FAULT_TOKEN="+natsserver.RandomPassword(),
			"STORE_DSN=sqlite:"+filepath.Join(stateDir, "data", in.Service+".db"),
			"NATS_USER="+s.natsUsers[in.Service].Name,
			"NATS_PASSWORD="+s.natsUsers[in.Service].Password,
		)
		env = append(env, tlsEnv[in.Service]...)
		in.baseEnv = env
		in.Env = serviceEnv(env, svc)
		in.onFail = s.instanceFailed
		in.onCrash = s.instanceCrashed
	}
	return nil
}

// serviceEnv returns base followed by the manifest's env of svc, in key order; later
// entries win.
func serviceEnv(base []string, svc *Service) []string {
	env := slices.Clone(base)
	keys := make([]string, 0, len(svc.Env))
	for k := range svc.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+svc.Env[k])
	}
	return env
}

// NATSUser returns the user service logs in to the embedded NATS server with.
func (s *System) NATSUser(service string) (natsserver.User, bool) {
	u, ok := s.natsUsers[service]
	return u, ok
}

// instanceFailed tells the terminal why an instance failed and what brings it back,
// also under Quiet, where the instance's own lines are not printed.
func (s *System) instanceFailed(in *Instance, reason string) {
	lines := strings.Split(reason, "\n")
	s.printf("%s failed with a configuration error (exit status %d): %s", in.ID, ConfigExitCode, lines[0])
	for _, l := range lines[1:] {
		s.printf("%s   %s", strings.Repeat(" ", len(in.ID)), l)
	}
	s.printf("%s is not restarted until its source changes (it is rebuilt), its %s entry changes, or it is restarted from the dashboard",
		in.ID, ManifestFile)
}

// instanceCrashed says, under Quiet only (otherwise the instance's own lines and
// devrun's are printed already), that an instance exited and is restarted, with its last
// stderr lines: why a service is crash-looping.
func (s *System) instanceCrashed(in *Instance, what, tail string) {
	if !s.opts.Quiet {
		return
	}
	s.printf("%s %s", in.ID, what)
	for _, l := range strings.Split(tail, "\n") {
		if l != "" {
			s.printf("%s   %s", strings.Repeat(" ", len(in.ID)), l)
		}
	}
}

// ErrConfig is matched (errors.Is) by the error of WaitReady when an instance failed with
// a configuration error (see StateFailed): the system runs without it, and it starts
// again once its source or svckit.yaml entry changes or it is restarted by hand.
var ErrConfig = errors.New("configuration error")

// failedGrace is how much longer WaitReady waits for the other instances once one failed.
const failedGrace = 10 * time.Second

// WaitReady waits until every instance answers /readyz with 200 or has failed with a
// configuration error, printing a line as each becomes ready. When some failed, the
// error lists them and matches ErrConfig; as the others may need the failed ones to be
// ready, they are waited for at most failedGrace longer.
func (s *System) WaitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	pending := slices.Clone(s.Instances)
	var failed []error
	var giveUp <-chan time.Time
	for {
		if len(failed) > 0 && giveUp == nil {
			giveUp = time.After(failedGrace)
		}
		var next []*Instance
		for _, in := range pending {
			switch st := in.Status(); {
			case st.State == StateFailed:
				failed = append(failed, fmt.Errorf("%s: %w: %s", in.ID, ErrConfig, strings.ReplaceAll(st.Reason, "\n", " / ")))
			case st.State == StateRunning && answersReady(client, in):
				s.printf("%s: ready (%s after its start)", in.ID, in.Status().Uptime.Round(10*time.Millisecond))
			default:
				next = append(next, in)
			}
		}
		if pending = next; len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			in := pending[0]
			st := in.Status()
			var tail []string
			for _, l := range s.Logs.Query(LogFilter{Service: in.Service, Limit: 15}) {
				tail = append(tail, l.Instance+": "+l.Raw)
			}
			return fmt.Errorf("%s not ready (%s, %d restarts, last exit %q): %w; its last log lines:\n%s",
				in.ID, st.State, st.Restarts, st.LastExit, ctx.Err(), strings.Join(tail, "\n"))
		case <-giveUp:
			ids := make([]string, len(pending))
			for i, in := range pending {
				ids[i] = in.ID
			}
			return errors.Join(append(failed, fmt.Errorf("not ready yet: %s", strings.Join(ids, ", ")))...)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if len(failed) > 0 {
		return errors.Join(failed...)
	}
	s.printf("%s ready in %s", plural(len(s.Instances), "instance"), time.Since(s.started).Round(10*time.Millisecond))
	return nil
}

// answersReady reports whether the instance's admin listener answers /readyz with 200.
func answersReady(client *http.Client, in *Instance) bool {
	resp, err := client.Get("http://" + in.Addrs["admin"] + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// DevToken returns a development token for subject, valid for a day, that the system's
// services accept.
func (s *System) DevToken(subject string, roles ...string) (string, error) {
	return s.Issuer.Token(subject, 24*time.Hour, roles...)
}

// Instance returns the instance with the given id ("orders-1"), or nil.
func (s *System) Instance(id string) *Instance {
	for _, in := range s.Instances {
		if in.ID == id {
			return in
		}
	}
	return nil
}

// PublicURL returns the HTTP address of the first public service's first instance.
func (s *System) PublicURL() string {
	for _, svc := range s.Manifest.Services {
		if svc.Public {
			for _, in := range s.Instances {
				if in.Service == svc.Name {
					return "http://" + in.Addrs["http"]
				}
			}
		}
	}
	return ""
}

// Stop stops every instance gracefully (SIGTERM, SIGKILL after the grace period), then
// the collector and NATS.
func (s *System) Stop(ctx context.Context) error {
	s.printf("stopping %s…", plural(len(s.Instances), "instance"))
	if s.cancel != nil {
		s.cancel()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		for _, in := range s.Instances {
			in.killNow()
		}
		<-done
		err = errors.New("devrun: stop forced; instances killed")
	}
	s.shutdownInfra()
	s.printf("stopped")
	// The last lines — the services' shutdown messages and the one above — reach the
	// terminal before Stop returns and the program exits.
	if s.printing.Swap(false) {
		s.stopPrinter()
		<-s.printerD
	}
	return err
}

func (s *System) shutdownInfra() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.srv != nil {
		_ = s.srv.Shutdown(ctx)
	}
	if s.NATS != nil {
		_ = s.NATS.Shutdown(ctx)
	}
}

func (s *System) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	s.Logs.Add("svckit", "dev", "devrun", line)
	if !s.printing.Load() {
		fmt.Fprintf(s.opts.Out, "svckit dev | %s\n", line)
	}
}

var palette = []string{"\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m", "\033[96m", "\033[93m"}

// printLogs writes the lines of ch to the terminal with a coloured instance prefix until
// ch is closed, then closes s.printerD.
func (s *System) printLogs(ch <-chan LogLine) {
	defer close(s.printerD)
	colors := map[string]string{}
	for i, svc := range s.Manifest.Services {
		colors[svc.Name] = palette[i%len(palette)]
	}
	width := 10
	for _, in := range s.Instances {
		width = max(width, len(in.ID))
	}
	for l := range ch {
		prefix := l.Instance
		if l.Service == "svckit" {
			prefix = "svckit dev"
		} else {
			prefix = l.Instance
		}
		text := l.Raw
		if attrs := l.Attrs(); attrs != nil {
			text = compact(&l, attrs)
		}
		if s.opts.Color {
			fmt.Fprintf(s.opts.Out, "%s%-*s |\033[0m %s\n", colors[l.Service], width, prefix, text)
		} else {
			fmt.Fprintf(s.opts.Out, "%-*s | %s\n", width, prefix, text)
		}
	}
}

// compact renders a JSON log line as "LEVEL msg key=value …" without the fields the
// prefix already shows.
func compact(l *LogLine, attrs map[string]any) string {
	var b strings.Builder
	b.WriteString(l.Level)
	b.WriteByte(' ')
	b.WriteString(l.Msg)
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		switch k {
		case "time", "level", "msg", "service", "span_id", "stack":
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, attrs[k])
	}
	return b.String()
}

// Ports for services come from a range below Linux's ephemeral ports (32768–60999), so
// that sockets other programs bind to port 0 — test servers, another system's NATS —
// cannot take a port between the moment it is chosen here and the moment the service
// binds it. Ports handed out by this process are never handed out twice.
const (
	portLow  = 20000
	portHigh = 32000
)

var (
	portMu    sync.Mutex
	portsUsed = map[int]bool{}
)

func freePorts(n int) ([]string, error) {
	portMu.Lock()
	defer portMu.Unlock()
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > 5000 {
			return nil, fmt.Errorf("free port: none free between %d and %d", portLow, portHigh)
		}
		port := portLow + rand.IntN(portHigh-portLow)
		if portsUsed[port] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		ln.Close()
		portsUsed[port] = true
		out = append(out, ln.Addr().String())
	}
	return out, nil
}
