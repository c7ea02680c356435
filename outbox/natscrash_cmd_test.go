//go:build !integration

package outbox_test

import "os/exec"

// natsServerCommand is the command of TestNATSCrashRelay's NATS server process: this test
// binary (see natscrash_integration_test.go for the real nats-server binary).
func natsServerCommand(dir string, port int, pass string) *exec.Cmd {
	return childServerCommand(dir, port, pass)
}
