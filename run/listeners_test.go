package run

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// socketFD returns a duplicate descriptor of a new loopback listener, as a parent would
// hand it over, and the listener's address.
func socketFD(t *testing.T) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return fd, addr
}

func TestInheritedListenersEnvironment(t *testing.T) {
	notSocket, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	defer notSocket.Close()
	tests := []struct {
		name    string
		env     map[string]string
		fd      func(t *testing.T) int // the first descriptor, for cases that reach it
		want    []string
		wantErr string
	}{
		{name: "none", env: map[string]string{}},
		{name: "for another process", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_FDNAMES": "http", "LISTEN_PID": "1"}},
		{name: "count not a number", env: map[string]string{"LISTEN_FDS": "two"}, wantErr: `LISTEN_FDS="two"`},
		{name: "count too large", env: map[string]string{"LISTEN_FDS": "100000"}, wantErr: "from 0 to 64"},
		{name: "names do not match the count", env: map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http"},
			wantErr: "LISTEN_FDNAMES names 1 sockets, LISTEN_FDS is 2"},
		{name: "not a socket", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"},
			fd: func(t *testing.T) int {
				fd, err := syscall.Dup(int(notSocket.Fd()))
				if err != nil {
					t.Fatal(err)
				}
				return fd
			}, wantErr: `inherited socket "http"`},
		{name: "one socket", env: map[string]string{"LISTEN_FDS": "1", "LISTEN_FDNAMES": "grpc", "LISTEN_PID": strconv.Itoa(os.Getpid())},
			fd: func(t *testing.T) int { fd, _ := socketFD(t); return fd }, want: []string{"grpc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := 1 << 20 // no such descriptor: cases that must not touch one fail loudly
			if tt.fd != nil {
				start = tt.fd(t)
			}
			lns, err := inheritedListeners(func(k string) string { return tt.env[k] }, start)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if len(lns) != 0 {
					t.Fatalf("listeners %v returned with an error", lns)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(lns) != len(tt.want) {
				t.Fatalf("got %d listeners, want %v", len(lns), tt.want)
			}
			for _, name := range tt.want {
				if lns[name] == nil {
					t.Fatalf("no listener %q in %v", name, lns)
				}
				lns[name].Close()
			}
		})
	}
}

// TestMain runs the child of TestInheritedListenersAcrossExec when the test binary is
// started as that child.
func TestMain(m *testing.M) {
	if os.Getenv("RUN_TEST_LISTEN_CHILD") == "1" {
		if err := listenChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// listenChild takes the sockets it inherited and answers one connection on each with
// the socket's name.
func listenChild() error {
	lns, err := InheritedListeners()
	if err != nil {
		return err
	}
	if v := os.Getenv("LISTEN_FDS"); v != "" {
		return fmt.Errorf("LISTEN_FDS=%s still set: a child of this process would take the sockets", v)
	}
	for _, name := range []string{"http", "grpc"} {
		if lns[name] == nil {
			return fmt.Errorf("no inherited listener %q", name)
		}
		c, err := lns[name].Accept()
		if err != nil {
			return err
		}
		fmt.Fprintf(c, "%s\n", name)
		c.Close()
	}
	return nil
}

// A parent opens the sockets and connects to them before the child runs: the
// connections wait in the sockets' queues and the child, given the descriptors, accepts
// them.
func TestInheritedListenersAcrossExec(t *testing.T) {
	var files []*os.File
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		defer ln.Close()
		defer f.Close()
		files = append(files, f)
	}
	var conns []net.Conn
	for _, a := range addrs {
		c, err := net.Dial("tcp", a) // before any process accepts: queued, not refused
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "RUN_TEST_LISTEN_CHILD=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=http:grpc")
	cmd.ExtraFiles = files
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"http", "grpc"} {
		line, err := bufio.NewReader(conns[i]).ReadString('\n')
		if err != nil {
			t.Fatalf("reading from the child on %s: %v", want, err)
		}
		if got := strings.TrimSpace(line); got != want {
			t.Fatalf("socket %d answered %q, want %q", i, got, want)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
