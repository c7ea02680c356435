package run

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// The environment of socket activation, as systemd sets it (sd_listen_fds(3)): the
// process inherits LISTEN_FDS open listening sockets as file descriptors 3, 4, …, named
// in order by LISTEN_FDNAMES (names separated by colons). LISTEN_PID, when set, is the
// process the sockets are meant for.
const (
	envListenFDs     = "LISTEN_FDS"
	envListenFDNames = "LISTEN_FDNAMES"
	envListenPID     = "LISTEN_PID"
	listenFDsStart   = 3
	maxListenFDs     = 64
)

// InheritedListeners returns the listening sockets this process inherited from the one
// that started it, by name, following systemd's socket-activation protocol: LISTEN_FDS
// sockets from file descriptor 3 on, named by LISTEN_FDNAMES. It returns an empty map
// when there are none, or when LISTEN_PID is set and names another process. It unsets
// the three variables, so the process's own children do not take the sockets for theirs.
//
// A listener held by a parent outlives the processes that serve it: svckit dev keeps each
// instance's HTTP and gRPC sockets and hands them to every process it starts for the
// instance, so that a connection made while the service restarts waits in the socket's
// queue instead of being refused, and a new process can start serving beside the old one
// before the old one stops (svckit.App.Run uses the listeners named "http", "grpc" and
// "admin" in place of its addresses). Under systemd, name the sockets with
// FileDescriptorName=.
//
// An error means the variables are malformed or a descriptor is not a listening socket.
func InheritedListeners() (map[string]net.Listener, error) {
	lns, err := inheritedListeners(os.Getenv, listenFDsStart)
	for _, k := range []string{envListenFDs, envListenFDNames, envListenPID} {
		_ = os.Unsetenv(k)
	}
	return lns, err
}

// inheritedListeners reads the protocol's variables with getenv; descriptors start at start.
func inheritedListeners(getenv func(string) string, start int) (map[string]net.Listener, error) {
	lns := map[string]net.Listener{}
	fdsVar := getenv(envListenFDs)
	if fdsVar == "" {
		return lns, nil
	}
	if pid := getenv(envListenPID); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return lns, nil // meant for another process (a parent's, leaked into this one's environment)
	}
	n, err := strconv.Atoi(fdsVar)
	if err != nil || n < 0 || n > maxListenFDs {
		return lns, fmt.Errorf("run: %s=%q: want a count of sockets from 0 to %d", envListenFDs, fdsVar, maxListenFDs)
	}
	var names []string
	if v := getenv(envListenFDNames); v != "" {
		names = strings.Split(v, ":")
	}
	if len(names) != n {
		return lns, fmt.Errorf("run: %s names %d sockets, %s is %d", envListenFDNames, len(names), envListenFDs, n)
	}
	var errs []error
	for i, name := range names {
		fd := start + i
		f := os.NewFile(uintptr(fd), name)
		if f == nil {
			errs = append(errs, fmt.Errorf("run: inherited socket %q (fd %d): not an open file", name, fd))
			continue
		}
		// FileListener duplicates the descriptor (close-on-exec); the original is closed
		// so that nothing this process starts inherits it.
		ln, err := net.FileListener(f)
		_ = f.Close()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("run: inherited socket %q (fd %d): %w", name, fd, err))
		case lns[name] != nil:
			_ = ln.Close()
			errs = append(errs, fmt.Errorf("run: inherited socket name %q appears twice in %s", name, envListenFDNames))
		default:
			lns[name] = ln
		}
	}
	if len(errs) > 0 {
		for _, ln := range lns {
			_ = ln.Close()
		}
		return map[string]net.Listener{}, errors.Join(errs...)
	}
	return lns, nil
}
