//go:build integration

package pb_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedCodeIsCurrent regenerates addsvc.pb.go with protoc and protoc-gen-go (the
// version in go.mod) and fails if the committed file differs.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatalf("protoc not installed (apt-get install -y protobuf-compiler): %v", err)
	}
	gobin := t.TempDir()
	install := exec.Command("go", "install", "google.golang.org/protobuf/cmd/protoc-gen-go")
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("installing protoc-gen-go: %v\n%s", err, out)
	}
	out := t.TempDir()
	gen := exec.Command("protoc", "--go_out="+out, "--go_opt=paths=source_relative", "addsvc.proto")
	gen.Env = append(os.Environ(), "PATH="+gobin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	want, err := os.ReadFile(filepath.Join(out, "addsvc.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("addsvc.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	// The header names the protoc version, which may differ between machines.
	if !bytes.Equal(stripVersions(got), stripVersions(want)) {
		t.Fatal("addsvc.pb.go is stale: run protoc --go_out=. --go_opt=paths=source_relative addsvc.proto")
	}
}

func stripVersions(b []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("// \tprotoc ")) || bytes.HasPrefix(line, []byte("// \tprotoc-gen-go ")) {
			continue
		}
		out = append(out, line)
	}
	return bytes.Join(out, []byte("\n"))
}
