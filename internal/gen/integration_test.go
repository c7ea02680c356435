//go:build integration

package gen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// protocGenGoGRPC is the protoc-gen-go-grpc release the interop test installs.
const protocGenGoGRPC = "google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2"

// installPlugins installs protoc-gen-go (the version in go.mod) and protoc-gen-go-grpc into
// a temporary GOBIN and returns a PATH that has them and protoc.
func installPlugins(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatalf("protoc not installed (apt-get install -y protobuf-compiler): %v", err)
	}
	gobin := t.TempDir()
	for _, pkg := range []string{"google.golang.org/protobuf/cmd/protoc-gen-go", protocGenGoGRPC} {
		cmd := exec.Command("go", "install", pkg)
		cmd.Dir = moduleRoot(t)
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go install %s: %v\n%s", pkg, err, out)
		}
	}
	return gobin + string(os.PathListSeparator) + os.Getenv("PATH")
}

// TestStandardClientInterop compiles the emitted .proto with protoc, protoc-gen-go and
// protoc-gen-go-grpc into a client, and calls a generated svckit server with it, in
// separate processes (the two Go packages register the same protobuf names).
func TestStandardClientInterop(t *testing.T) {
	path := installPlugins(t)
	dir := tempModule(t, map[string]string{
		"store/service.go":    e2eService,
		"store/store.go":      e2eImpl,
		"server/main.go":      interopServer,
		"client/main.go":      interopClient,
		"client/stdpb/doc.go": "// Package stdpb is compiled by protoc from store/pb/e2e/v1/store.proto.\npackage stdpb\n",
	})
	files, err := Generate(filepath.Join(dir, "store"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(files); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "client", "stdpb")
	m := "Me2e/v1/store.proto=example.com/e2e/client/stdpb;stdpb"
	protoc := exec.Command("protoc", "-I", filepath.Join(dir, "store", "pb"), "-I", "/usr/include",
		"--go_out="+out, "--go_opt=module=example.com/e2e/client/stdpb", "--go_opt="+m,
		"--go-grpc_out="+out, "--go-grpc_opt=module=example.com/e2e/client/stdpb", "--go-grpc_opt="+m,
		"e2e/v1/store.proto")
	protoc.Dir = filepath.Join(dir, "store", "pb") // protoc finds the file relative to its directory
	protoc.Env = append(os.Environ(), "PATH="+path)
	if b, err := protoc.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	bin := t.TempDir()
	goCmd(t, dir, "build", "-o", bin, "./server", "./client")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, filepath.Join(bin, "server"))
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the server's address: %v", err)
	}
	cli := exec.CommandContext(ctx, filepath.Join(bin, "client"), strings.TrimSpace(line))
	b, err := cli.CombinedOutput()
	if err != nil || !bytes.Contains(b, []byte("ok")) {
		t.Fatalf("standard client: %v\n%s", err, b)
	}
	t.Logf("standard client: %s", b)
}

// TestPBGoMatchesProtoc checks that the protobuf Go code generated in-process is, byte for
// byte from the package clause on, the code protoc and protoc-gen-go write for the emitted
// .proto (the header differs: it names the generator and versions), for every package of
// the golden corpus and for addsvc; protoc compiling each .proto is part of the check.
func TestPBGoMatchesProtoc(t *testing.T) {
	path := installPlugins(t)
	dirs := map[string]Options{"../../examples/addsvc/addsvc": {}}
	for name, opts := range goldenCases {
		dirs[goldenDir(name)] = opts
	}
	for dir, opts := range dirs {
		files, err := Generate(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		var protoFile, pbFile File
		for _, f := range files {
			switch {
			case strings.HasSuffix(f.Path, ".proto"):
				protoFile = f
			case strings.HasSuffix(f.Path, "_pb_gen.go"):
				pbFile = f
			}
		}
		out := t.TempDir()
		root, name := protoRoot(t, protoFile)
		cmd := exec.Command("protoc", "-I", root, "-I", "/usr/include",
			"--go_out="+out, "--go_opt=paths=source_relative", name)
		cmd.Dir = root // protoc finds the file relative to its directory
		cmd.Env = append(os.Environ(), "PATH="+path)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("protoc %s: %v\n%s", protoFile.Path, err, b)
		}
		want, err := os.ReadFile(filepath.Join(out, strings.TrimSuffix(name, ".proto")+".pb.go"))
		if err != nil {
			t.Fatal(err)
		}
		if a, b := fromPackage(pbFile.Content), fromPackage(want); a != b {
			t.Errorf("%s: in-process code differs from protoc's:\n%s", dir, lineDiff(a, b))
		}
	}
}

// protoRoot returns the include root of a generated .proto (the directory its protobuf
// package's directories start in) and its path below that root, as protoc registers it.
func protoRoot(t *testing.T, f File) (root, name string) {
	t.Helper()
	_, rest, ok := strings.Cut(string(f.Content), "\npackage ")
	pkg, _, _ := strings.Cut(rest, ";")
	if !ok || pkg == "" {
		t.Fatalf("%s: no package statement", f.Path)
	}
	name = strings.ReplaceAll(pkg, ".", "/") + "/" + filepath.Base(f.Path)
	root = strings.TrimSuffix(f.Path, filepath.FromSlash("/"+name))
	if root == f.Path {
		t.Fatalf("%s is not in its package's directory %s", f.Path, name)
	}
	return root, name
}

// fromPackage returns src from its package clause on.
func fromPackage(src []byte) string {
	s := string(src)
	if i := strings.Index(s, "\npackage "); i >= 0 {
		return s[i+1:]
	}
	return s
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  svckit: %s\n  protoc: %s", i+1, al[i], bl[i])
		}
	}
	return "lengths differ"
}

const interopServer = `// Command server serves the generated store service and prints its gRPC address.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/svckit/svckit"

	"example.com/e2e/store"
)

func main() {
	ctx := context.Background()
	app, err := svckit.New(ctx, "store", &svckit.Config{}, svckit.Options{
		Stdout: io.Discard,
		Args:   []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := store.Serve(app, store.New()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		addr, err := app.Addr(ctx, "grpc")
		if err == nil {
			fmt.Println(addr)
		}
	}()
	if err := app.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

const interopClient = `// Command client calls the store service with a client that protoc and
// protoc-gen-go-grpc compiled from the emitted .proto.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"example.com/e2e/client/stdpb"
)

func fail(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

func main() {
	cc, err := grpc.NewClient(os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail("dial: %v", err)
	}
	defer cc.Close()
	c := stdpb.NewStoreClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sum, err := c.Add(ctx, &stdpb.AddRequest{A: 2, B: 3}, grpc.WaitForReady(true))
	if err != nil || sum.GetSum() != 5 {
		fail("Add: %v %v", sum, err)
	}
	it, err := c.Get(ctx, &stdpb.GetRequest{Id: 7})
	if err != nil || it.GetName() != "item" || it.GetKind() != "a" || it.GetParent().GetId() != 1007 || it.GetNote() != "note" ||
		it.GetTtl().AsDuration() != 90*time.Second || it.GetAttrs()["k"] != "v" || len(it.GetTags()) != 2 ||
		!it.GetAt().AsTime().Equal(time.Date(2026, 11, 27, 5, 0, 0, 123, time.UTC)) || len(it.GetData()) != 3 {
		fail("Get: %v %v", it, err)
	}
	if _, err := c.Get(ctx, &stdpb.GetRequest{Id: 0}); status.Code(err) != codes.NotFound {
		fail("Get(0): %v, want NotFound", err)
	}
	if _, err := c.Fail(ctx, &stdpb.FailRequest{Kind: "permission_denied"}); status.Code(err) != codes.PermissionDenied {
		fail("Fail: %v, want PermissionDenied", err)
	}
	limit := int64(2)
	list, err := c.List(ctx, &stdpb.ListRequest{Kind: "b", Limit: &limit, Tags: []string{"t"}})
	if res := list.GetResult(); err != nil || len(res) != 2 || res[1].GetKind() != "b" || len(res[1].GetTags()) != 1 || res[1].GetTags()[0] != "t" {
		fail("List: %v %v", list, err)
	}
	put, err := c.Put(ctx, &stdpb.PutRequest{Id: 9, Item: &stdpb.Item{Name: "n", Ttl: durationpb.New(time.Second), Attrs: map[string]string{"a": "b"}}})
	if err != nil || put.GetId() != 9 || put.GetName() != "n" || put.GetTtl().AsDuration() != time.Second || put.GetAttrs()["a"] != "b" {
		fail("Put: %v %v", put, err)
	}
	stream, err := c.Count(ctx, &stdpb.CountRequest{N: 3})
	if err != nil {
		fail("Count: %v", err)
	}
	var ids []int64
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("Count: %v", err)
		}
		ids = append(ids, m.GetId())
	}
	if fmt.Sprint(ids) != "[0 1 2]" {
		fail("Count: %v", ids)
	}
	fmt.Println("ok")
}
`
