package devrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// State is the life-cycle state of a supervised process.
type State string

// The states of a process.
const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateBackoff  State = "backoff" // crashed; waiting to restart
	// StateFailed is a process that reported a configuration error (ConfigExitCode). It
	// is not restarted until its service is rebuilt after a source change, its svckit.yaml
	// entry changes, or it is restarted by hand (Kill, the dashboard's button).
	StateFailed  State = "failed"
	StateStopped State = "stopped"
)

// ConfigExitCode is the exit status with which svckit.Main reports a configuration
// error, after one line on stderr that names the setting. Restarting such a process
// cannot help, so the supervisor waits for a change instead. Go's runtime exits with the
// same status after a panic; a process whose stderr shows a panic or fatal error trace is
// restarted as a crash.
const ConfigExitCode = 2

// reasonLines is how many of its last stderr lines give a failed process's reason.
const reasonLines = 3

// Instance is one supervised process of a service.
type Instance struct {
	Service string
	ID      string // "orders-1"
	Bin     string
	Args    []string
	Env     []string
	Addrs   map[string]string // "http", "grpc", "admin" → host:port

	mu       sync.Mutex
	state    State
	pid      int
	restarts int
	started  time.Time
	lastExit string
	reason   string
	retry    chan struct{} // wakes a failed instance's supervisor
	// A changed svckit.yaml entry replaces Env and Args for the next start.
	override  bool
	env, args []string
	baseEnv   []string // Env without the manifest's env, to apply a changed entry to
	// onFail, if set, is told when the process failed with a configuration error.
	onFail func(in *Instance, reason string)
	// onCrash, if set, is told when the process exited otherwise and is restarted: what
	// happened and its last stderr lines.
	onCrash func(in *Instance, what, tail string)

	// sockets are the instance's listening sockets, held by the runner and handed to
	// every process it starts for the instance (run.InheritedListeners), named by
	// socketNames; nil when its program cannot take them (see handsOver).
	sockets     []*os.File
	socketNames []string
	// replace carries Restart's requests to the supervisor; each gets its result back.
	replace chan chan error
	gen     int            // processes started by Restart, to alternate their INSTANCE_ID
	retired sync.WaitGroup // replaced processes still stopping
}

// InstanceStatus is a snapshot of an instance for the terminal and the dashboard.
type InstanceStatus struct {
	Service  string            `json:"service"`
	ID       string            `json:"id"`
	State    State             `json:"state"`
	PID      int               `json:"pid"`
	Restarts int               `json:"restarts"`
	Uptime   time.Duration     `json:"uptime_ns"`
	LastExit string            `json:"last_exit,omitempty"`
	Addrs    map[string]string `json:"addrs"`
	// Reason is what a failed instance last wrote on stderr (up to three lines), the
	// configuration error it reported.
	Reason string `json:"reason,omitempty"`
}

// Status returns a snapshot.
func (in *Instance) Status() InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := InstanceStatus{Service: in.Service, ID: in.ID, State: in.state, PID: in.pid,
		Restarts: in.restarts, LastExit: in.lastExit, Addrs: in.Addrs, Reason: in.reason}
	if in.state == StateRunning {
		st.Uptime = time.Since(in.started)
	}
	return st
}

func (in *Instance) set(f func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f()
}

// retryLocked returns the channel that wakes a failed instance; in.mu is held.
func (in *Instance) retryLocked() chan struct{} {
	if in.retry == nil {
		in.retry = make(chan struct{}, 1)
	}
	return in.retry
}

// wake starts a failed instance again and reports whether it was failed.
func (in *Instance) wake() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state != StateFailed {
		return false
	}
	select {
	case in.retryLocked() <- struct{}{}:
	default:
	}
	return true
}

// command returns the environment and arguments of the next start.
func (in *Instance) command() (env, args []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.override {
		return in.env, in.args
	}
	return in.Env, in.Args
}

// reconfigure replaces the manifest's env and args for the next start.
func (in *Instance) reconfigure(svc *Service) {
	env := serviceEnv(in.baseEnv, svc)
	in.set(func() { in.override, in.env, in.args = true, env, slices.Clone(svc.Args) })
}

// Backoff bounds the delay between restarts of a crashing process.
type Backoff struct {
	Min, Max time.Duration
	// Stable is how long a process must run before its backoff resets.
	Stable time.Duration
}

// DefaultBackoff restarts after 200 ms, doubling up to 10 s; a process that ran 30 s
// counts as healthy again.
var DefaultBackoff = Backoff{Min: 200 * time.Millisecond, Max: 10 * time.Second, Stable: 30 * time.Second}

// Supervise runs the instance until ctx is canceled, restarting it with backoff whenever
// it exits. Each output line goes to logs; events (start, exit, restart) are logged as
// lines of stream "devrun". A process that exits with ConfigExitCode without a crash
// trace is not restarted: the instance is StateFailed, with its last stderr lines as the
// reason, until it is woken (Kill, or a rebuild of its service). On cancellation the
// process gets SIGTERM, then SIGKILL after grace.
func (in *Instance) Supervise(ctx context.Context, logs *LogStore, b Backoff, grace time.Duration) {
	defer in.closeSockets()
	defer in.retired.Wait() // processes replaced by Restart, still stopping
	in.mu.Lock()
	retry := in.retryLocked()
	in.mu.Unlock()
	delay := b.Min
	for ctx.Err() == nil {
		in.set(func() { in.state = StateStarting })
		started := time.Now()
		res := in.runOnce(ctx, logs, grace)
		if !res.replacedAt.IsZero() {
			started = res.replacedAt
		}
		ran := time.Since(started)
		if ctx.Err() != nil {
			in.set(func() { in.state, in.pid = StateStopped, 0 })
			return
		}
		if res.configError() {
			reason := res.reason()
			in.set(func() {
				in.state, in.pid, in.reason = StateFailed, 0, reason
				in.lastExit = fmt.Sprintf("%v (configuration error): %s", res.err, lastLine(reason))
				select { // a wake-up from before this failure is stale
				case <-retry:
				default:
				}
			})
			logs.Add(in.Service, in.ID, "devrun", fmt.Sprintf("exited after %s with status %d, a configuration error; "+
				"not restarted until it is rebuilt after a source change or restarted from the dashboard",
				ran.Round(time.Millisecond), ConfigExitCode))
			if in.onFail != nil {
				in.onFail(in, reason)
			}
			select {
			case <-ctx.Done():
				in.set(func() { in.state = StateStopped })
				return
			case <-retry:
			}
			delay = b.Min
			in.set(func() { in.restarts++; in.reason = "" })
			logs.Add(in.Service, in.ID, "devrun", "starting again after a configuration error")
			continue
		}
		if ran >= b.Stable {
			delay = b.Min
		}
		msg := fmt.Sprintf("exited after %s: %v; restarting in %s", ran.Round(time.Millisecond), res.err, delay)
		in.set(func() { in.state, in.pid, in.lastExit = StateBackoff, 0, fmt.Sprint(res.err) })
		logs.Add(in.Service, in.ID, "devrun", msg)
		if in.onCrash != nil {
			tail := res.tail
			if res.panicMsg != "" && !slices.Contains(tail, res.panicMsg) {
				tail = append([]string{res.panicMsg, "…"}, tail...)
			}
			in.onCrash(in, msg, strings.Join(tail, "\n"))
		}
		select {
		case <-ctx.Done():
			in.set(func() { in.state = StateStopped })
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, b.Max)
		in.set(func() { in.restarts++ })
	}
	// The context ended as the backoff's timer fired, and select took the timer.
	in.set(func() { in.state, in.pid = StateStopped, 0 })
}

// runResult is how one run of a process ended.
type runResult struct {
	err      error    // from exec.Cmd.Wait, or the start
	tail     []string // the last reasonLines lines on stderr
	panicked bool     // stderr showed a Go panic or fatal error
	panicMsg string   // its first line ("panic: …", "fatal error: …")
	// replacedAt is when the process that ended had replaced another (Restart).
	replacedAt time.Time
}

// configError reports whether the process exited with ConfigExitCode and no crash trace.
func (r runResult) configError() bool {
	var ee *exec.ExitError
	return errors.As(r.err, &ee) && ee.ExitCode() == ConfigExitCode && !r.panicked
}

// reason is the stderr tail, or a note that there was none.
func (r runResult) reason() string {
	if len(r.tail) == 0 {
		return "(nothing on stderr)"
	}
	return strings.Join(r.tail, "\n")
}

// crashLine reports whether an stderr line is part of Go's report of a panic or fatal error.
func crashLine(l string) bool {
	return strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") ||
		(strings.HasPrefix(l, "goroutine ") && strings.HasSuffix(l, "]:"))
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// proc is one running process of an instance.
type proc struct {
	cmd   *exec.Cmd
	ready chan struct{} // closed when it logs that it is ready ("service ready")
	done  chan runResult
}

// readyLine reports whether a log line is svckit.App's report that the service is ready.
func readyLine(l string) bool { return strings.Contains(l, "service ready") }

// spawn starts a process of the instance with its environment and extra variables, and
// its output going to logs.
func (in *Instance) spawn(logs *LogStore, extraEnv ...string) (*proc, error) {
	env, args := in.command()
	cmd := exec.Command(in.Bin, args...)
	cmd.Env = append(slices.Clone(env), extraEnv...)
	if len(in.sockets) > 0 {
		cmd.ExtraFiles = in.sockets
		cmd.Env = append(cmd.Env, fmt.Sprintf("LISTEN_FDS=%d", len(in.sockets)), "LISTEN_FDNAMES="+strings.Join(in.socketNames, ":"))
	}
	// Setpgid: Ctrl-C in the terminal reaches svckit dev only, which stops the services in
	// order. Pdeathsig: if svckit dev dies without stopping them, they get SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	p := &proc{cmd: cmd, ready: make(chan struct{}), done: make(chan runResult, 1)}
	var res runResult
	var readyOnce sync.Once
	var wg sync.WaitGroup
	pump := func(r io.Reader, stream string) {
		defer wg.Done()
		scanLines(r, func(line string) { // line is valid during the call only
			logs.Add(in.Service, in.ID, stream, line) // stores a copy
			if readyLine(line) {
				readyOnce.Do(func() { close(p.ready) })
			}
			if stream != "stderr" || strings.TrimSpace(line) == "" {
				return
			}
			line = strings.Clone(line) // kept below
			// Only this goroutine writes res's stderr fields until wg.Wait.
			res.panicked = res.panicked || crashLine(line)
			if res.panicMsg == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")) {
				res.panicMsg = line
			}
			if len(res.tail) == reasonLines {
				res.tail = slices.Delete(res.tail, 0, 1)
			}
			res.tail = append(res.tail, line)
		})
	}
	wg.Add(2)
	go pump(stdout, "stdout")
	go pump(stderr, "stderr")
	go func() {
		wg.Wait() // read all output before Wait closes the pipes
		res.err = cmd.Wait()
		p.done <- res
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL to the process group after grace, and returns how the
// process ended.
func (p *proc) stop(grace time.Duration) runResult {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case res := <-p.done:
		return res
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		return <-p.done
	}
}

// runOnce runs a process of the instance until it exits or ctx ends, replacing it with a
// new one whenever Restart asks.
func (in *Instance) runOnce(ctx context.Context, logs *LogStore, grace time.Duration) runResult {
	p, err := in.spawn(logs)
	if err != nil {
		return runResult{err: err}
	}
	in.set(func() { in.state, in.pid, in.started = StateRunning, p.cmd.Process.Pid, time.Now() })
	var replacedAt time.Time
	for {
		select {
		case res := <-p.done:
			res.replacedAt = replacedAt
			return res
		case <-ctx.Done():
			res := p.stop(grace)
			res.replacedAt = replacedAt
			return res
		case reply := <-in.replaceCh():
			np, err := in.handOver(ctx, logs, p, grace)
			if err == nil {
				p, replacedAt = np, time.Now()
			}
			reply <- err
		}
	}
}

// replaceCh returns the channel of Restart's requests.
func (in *Instance) replaceCh() chan chan error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.replace == nil {
		in.replace = make(chan chan error)
	}
	return in.replace
}

// handoverTimeout bounds how long a replacement may take to become ready.
const handoverTimeout = 2 * time.Minute

// handOver starts a new process of the instance beside old, on the same sockets, waits
// until it reports that it is ready, then stops old gracefully in the background and
// returns the new one. If the new process exits or is not ready in time, it is stopped,
// old keeps serving and the error says why.
//
// The new process runs under the other of two INSTANCE_IDs (ID, ID-alt) than old: the
// two overlap while old drains, and state owned by an instance (saga claims, the outbox
// relay's lease) must not be taken over from a process that is still finishing its work.
func (in *Instance) handOver(ctx context.Context, logs *LogStore, old *proc, grace time.Duration) (*proc, error) {
	in.mu.Lock()
	in.gen++
	id := in.ID
	if in.gen%2 == 1 {
		id += "-alt"
	}
	in.mu.Unlock()
	logs.Add(in.Service, in.ID, "devrun", fmt.Sprintf("starting a new process (INSTANCE_ID=%s) beside pid %d; it takes over once ready", id, old.cmd.Process.Pid))
	np, err := in.spawn(logs, "INSTANCE_ID="+id)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(handoverTimeout)
	defer timer.Stop()
	select {
	case <-np.ready:
	case res := <-np.done:
		msg := fmt.Sprintf("the new process exited before it was ready (%v); pid %d keeps serving", res.err, old.cmd.Process.Pid)
		logs.Add(in.Service, in.ID, "devrun", msg)
		return nil, fmt.Errorf("%s: %s: %s", in.ID, msg, res.reason())
	case <-timer.C:
		np.stop(grace)
		return nil, fmt.Errorf("%s: the new process was not ready within %s; pid %d keeps serving", in.ID, handoverTimeout, old.cmd.Process.Pid)
	case <-ctx.Done():
		np.stop(grace)
		return nil, ctx.Err()
	}
	in.set(func() { in.pid, in.started, in.restarts = np.cmd.Process.Pid, time.Now(), in.restarts+1 })
	logs.Add(in.Service, in.ID, "devrun", fmt.Sprintf("pid %d is ready and serving; stopping pid %d", np.cmd.Process.Pid, old.cmd.Process.Pid))
	in.retired.Add(1)
	go func() {
		defer in.retired.Done()
		res := old.stop(grace)
		logs.Add(in.Service, in.ID, "devrun", fmt.Sprintf("replaced process pid %d stopped: %v", old.cmd.Process.Pid, exitText(res.err)))
	}()
	return np, nil
}

// exitText describes how a process ended.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Restart replaces the running process of the instance without a gap when its program
// takes its sockets from svckit dev (a svckit.App does): a new process starts on the same
// sockets, and the old one gets SIGTERM only once the new one is ready, so no
// connection is refused and no request is cut off. It returns when the new process serves,
// or with the reason it could not (the old one then keeps serving). An instance whose
// program cannot take the sockets is stopped with SIGTERM and started again by its
// supervisor; a failed instance (StateFailed) is started again.
func (in *Instance) Restart(ctx context.Context) error {
	if in.wake() {
		return nil
	}
	st := in.Status()
	if st.State != StateRunning {
		return fmt.Errorf("%s is %s, not running", in.ID, st.State)
	}
	if len(in.sockets) == 0 {
		p, err := os.FindProcess(st.PID)
		if err != nil {
			return err
		}
		return p.Signal(syscall.SIGTERM)
	}
	reply := make(chan error, 1)
	select {
	case in.replaceCh() <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// killNow sends SIGKILL to the process group without waiting, for a forced stop.
func (in *Instance) killNow() {
	in.mu.Lock()
	pid := in.pid
	in.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// Kill sends SIGKILL to the running process (for chaos tests and the dashboard); the
// supervisor restarts it. A failed instance (StateFailed) is started again instead.
func (in *Instance) Kill() error {
	if in.wake() {
		return nil
	}
	in.mu.Lock()
	pid := in.pid
	in.mu.Unlock()
	if pid == 0 {
		return fmt.Errorf("%s is not running", in.ID)
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// scanLines calls each with every line r reads (up to 1 MiB; a longer one ends the
// scan). The line's text is only valid during the call: it is a view of the scanner's
// buffer, not a copy, so that a line that is stored is copied once (by LogStore.Add), not
// twice. What each keeps it must copy.
func scanLines(r io.Reader, each func(line string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		b := sc.Bytes()
		each(unsafe.String(unsafe.SliceData(b), len(b)))
	}
}
