//go:build integration

package main

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestNewDockerBuild builds a new service's command with its Dockerfile's go build line
// (CGO_ENABLED=0, -trimpath, -ldflags "-s -w": every dependency compiled anew), checks
// that the binary is static and stripped, and runs it.
func TestNewDockerBuild(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run([]string{"new", "-svckit", moduleRoot(t), "greeter"}, &out, &errb); code != 0 {
		t.Fatalf("svckit new: code %d\n%s%s", code, out.String(), errb.String())
	}
	svc := filepath.Join(dir, "greeter")
	runScaffold(t, svc, filepath.Join(svc, "Dockerfile"), true)
}
