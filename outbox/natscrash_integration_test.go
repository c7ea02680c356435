//go:build integration

package outbox_test

import (
	"os"
	"os/exec"
	"strconv"

	"github.com/svckit/svckit/natsserver"
)

// natsServerCommand is the command of TestNATSCrashRelay's NATS server process: the real
// nats-server binary named by SVCKIT_NATS_SERVER, or this test binary if it is not set.
func natsServerCommand(dir string, port int, pass string) *exec.Cmd {
	bin := os.Getenv("SVCKIT_NATS_SERVER")
	if bin == "" {
		return childServerCommand(dir, port, pass)
	}
	return exec.Command(bin, "-js", "-sd", dir, "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"--user", natsserver.AdminUser, "--pass", pass)
}
