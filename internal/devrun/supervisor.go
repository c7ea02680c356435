package devrun

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// State is the life-cycle state of a supervised process.
type State string

// The states of a process.
const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateBackoff  State = "backoff" // crashed; waiting to restart
	StateStopped  State = "stopped"
)

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
}

// Status returns a snapshot.
func (in *Instance) Status() InstanceStatus {
	in.mu.Lock()
	defer in.mu.Unlock()
	st := InstanceStatus{Service: in.Service, ID: in.ID, State: in.state, PID: in.pid,
		Restarts: in.restarts, LastExit: in.lastExit, Addrs: in.Addrs}
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
// lines of stream "devrun". On cancellation the process gets SIGTERM, then SIGKILL after
// grace.
func (in *Instance) Supervise(ctx context.Context, logs *LogStore, b Backoff, grace time.Duration) {
	delay := b.Min
	for ctx.Err() == nil {
		in.set(func() { in.state = StateStarting })
		started := time.Now()
		err := in.runOnce(ctx, logs, grace)
		ran := time.Since(started)
		if ctx.Err() != nil {
			in.set(func() { in.state, in.pid = StateStopped, 0 })
			return
		}
		if ran >= b.Stable {
			delay = b.Min
		}
		msg := fmt.Sprintf("exited after %s: %v; restarting in %s", ran.Round(time.Millisecond), err, delay)
		in.set(func() { in.state, in.pid, in.lastExit = StateBackoff, 0, fmt.Sprint(err) })
		logs.Add(in.Service, in.ID, "devrun", msg)
		select {
		case <-ctx.Done():
			in.set(func() { in.state = StateStopped })
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, b.Max)
		in.set(func() { in.restarts++ })
	}
}

func (in *Instance) runOnce(ctx context.Context, logs *LogStore, grace time.Duration) error {
	cmd := exec.Command(in.Bin, in.Args...)
	cmd.Env = in.Env
	// Setpgid: Ctrl-C in the terminal reaches svckit dev only, which stops the services in
	// order. Pdeathsig: if svckit dev dies without stopping them, they get SIGTERM.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	in.set(func() { in.state, in.pid, in.started = StateRunning, cmd.Process.Pid, time.Now() })
	var wg sync.WaitGroup
	pump := func(r io.Reader, stream string) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logs.Add(in.Service, in.ID, stream, sc.Text())
		}
	}
	wg.Add(2)
	go pump(stdout, "stdout")
	go pump(stderr, "stderr")
	done := make(chan error, 1)
	go func() {
		wg.Wait() // read all output before Wait closes the pipes
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return err
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return <-done
		}
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
// supervisor restarts it.
func (in *Instance) Kill() error {
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
