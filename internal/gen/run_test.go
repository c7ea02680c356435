package gen

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// moduleRoot is the directory of the svckit module.
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tempModule makes a module in a temporary directory that uses this checkout of svckit
// through a replace directive, with svckit's go.sum. It sets GOFLAGS=-mod=mod for the test,
// so that go/packages and the go command add the requirements the generated code needs to
// go.mod as they go (downloading what the module cache lacks, through the usual GOPROXY),
// and GOWORK=off, so that a workspace around the checkout does not take the module in.
func tempModule(t *testing.T, files map[string]string) string {
	t.Helper()
	root := moduleRoot(t)
	dir := t.TempDir()
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files["go.mod"] = "module example.com/e2e\n\ngo 1.26\n\nrequire github.com/svckit/svckit v0.0.0\n\nreplace github.com/svckit/svckit => " + root + "\n"
	files["go.sum"] = string(sum)
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("GOFLAGS", "-mod=mod -buildvcs=false")
	t.Setenv("GOWORK", "off")
	return dir
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// TestGenerateBuildRun generates a service in a new module, builds it and runs its test,
// which serves the service with svckit.App on loopback and calls it with the generated
// HTTP and gRPC clients through the same Service interface.
func TestGenerateBuildRun(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds and runs a generated service")
	}
	dir := tempModule(t, map[string]string{
		"store/service.go":      e2eService,
		"store/store.go":        e2eImpl,
		"store/service_test.go": e2eTest,
	})
	files, err := Generate(filepath.Join(dir, "store"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(files); err != nil {
		t.Fatal(err)
	}
	out := goCmd(t, dir, "test", "-count=1", "-v", "./...")
	t.Logf("%s", out)
	// Regenerating changes nothing.
	files, err = Generate(filepath.Join(dir, "store"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if stale, err := Check(files); err != nil || len(stale) > 0 {
		t.Fatalf("regenerating: stale %v, %v", stale, err)
	}
}

const e2eService = `// Package store is a generated service used by gen's end-to-end test.
package store

import (
	"context"
	"iter"
	"time"
)

// Kind is a kind of item.
type Kind string

// The kinds.
const (
	KindA Kind = "a"
	KindB Kind = "b"
)

// Item is a stored item.
type Item struct {
	ID     int64             ` + "`json:\"id\"`" + `
	Name   string            ` + "`json:\"name\"`" + `
	Kind   Kind              ` + "`json:\"kind\"`" + `
	Tags   []string          ` + "`json:\"tags\"`" + `
	Attrs  map[string]string ` + "`json:\"attrs\"`" + `
	Note   *string           ` + "`json:\"note,omitempty\"`" + `
	At     time.Time         ` + "`json:\"at\"`" + `
	TTL    time.Duration     ` + "`json:\"ttl\"`" + `
	Parent *Item             ` + "`json:\"parent,omitempty\"`" + `
	Data   []byte            ` + "`json:\"data\"`" + `
}

// Service stores items.
//
//svckit:grpc e2e.v1.Store
type Service interface {
	// Add returns a + b.
	Add(ctx context.Context, a, b int) (sum int, err error)
	// Get returns an item.
	//svckit:http GET /items/{id}
	Get(ctx context.Context, id int64) (*Item, error)
	// Put stores an item under id.
	//svckit:http PUT /items/{id}
	Put(ctx context.Context, id int64, item Item) (Item, error)
	// List lists items of a kind.
	//svckit:http GET /items
	List(ctx context.Context, kind Kind, limit *int, tags []string) ([]Item, error)
	// Count streams n items.
	Count(ctx context.Context, n int) (iter.Seq2[Item, error], error)
	// Fail fails with the named kind.
	Fail(ctx context.Context, kind string) error
	// Remove removes an item; hard comes from the query string.
	//svckit:http DELETE /items/{id}
	Remove(ctx context.Context, id int64, hard bool) (removed string, err error)
	// Move binds two wildcards and a body field.
	//svckit:http POST /shelves/{shelf}/slots/{slot}
	Move(ctx context.Context, shelf string, slot uint32, note string) (string, error)
	// File takes the rest of the path.
	//svckit:http GET /files/{path...}
	File(ctx context.Context, path string) (string, error)
}
`

const e2eImpl = `package store

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/svckit/svckit/svcerr"
)

// New returns the service.
func New() Service { return impl{} }

type impl struct{}

var at = time.Date(2026, 11, 27, 5, 0, 0, 123, time.UTC)

func sample(id int64) Item {
	note := "note"
	return Item{ID: id, Name: "item", Kind: KindA, Tags: []string{"x", "y"}, Attrs: map[string]string{"k": "v"},
		Note: &note, At: at, TTL: 90 * time.Second, Parent: &Item{ID: id + 1000, Name: "parent"}, Data: []byte{0, 1, 2}}
}

func (impl) Add(_ context.Context, a, b int) (int, error) { return a + b, nil }

func (impl) Get(_ context.Context, id int64) (*Item, error) {
	if id == 0 {
		return nil, svcerr.New(svcerr.NotFound, "no item 0")
	}
	it := sample(id)
	return &it, nil
}

func (impl) Put(_ context.Context, id int64, item Item) (Item, error) {
	item.ID = id
	return item, nil
}

func (impl) List(_ context.Context, kind Kind, limit *int, tags []string) ([]Item, error) {
	n := 2
	if limit != nil {
		n = *limit
	}
	var out []Item
	for i := 0; i < n; i++ {
		out = append(out, Item{ID: int64(i), Kind: kind, Tags: tags})
	}
	return out, nil
}

func (impl) Count(ctx context.Context, n int) (iter.Seq2[Item, error], error) {
	if n < 0 {
		return nil, svcerr.Invalid("n", "must not be negative")
	}
	return func(yield func(Item, error) bool) {
		for i := 0; i < n; i++ {
			if !yield(Item{ID: int64(i)}, nil) {
				return
			}
		}
	}, nil
}

func (impl) Remove(_ context.Context, id int64, hard bool) (string, error) {
	return fmt.Sprintf("%d hard=%t", id, hard), nil
}

func (impl) Move(_ context.Context, shelf string, slot uint32, note string) (string, error) {
	return fmt.Sprintf("%s/%d: %s", shelf, slot, note), nil
}

func (impl) File(_ context.Context, path string) (string, error) { return "file " + path, nil }

func (impl) Fail(_ context.Context, kind string) error {
	k, _ := svcerr.ParseKind(kind)
	return svcerr.New(k, "failed on purpose")
}
`

const e2eTest = `package store

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/svckit/svckit"
	"github.com/svckit/svckit/svcerr"
)

func TestServeAndCall(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app, err := svckit.New(ctx, "store", &svckit.Config{}, svckit.Options{
		Stdout:  io.Discard,
		Args:    []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"},
		Env:     func(string) (string, bool) { return "", false },
		Signals: []os.Signal{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Serve(app, New()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	httpAddr, err := app.Addr(ctx, "http")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, err := app.Addr(ctx, "grpc")
	if err != nil {
		t.Fatal(err)
	}
	he, err := NewHTTPClient("http://" + httpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	clients := map[string]Service{"http": NewClient(he), "grpc": NewClient(NewGRPCClient(cc))}
	for name, c := range clients {
		if sum, err := c.Add(ctx, 2, 3); err != nil || sum != 5 {
			t.Errorf("%s: Add = %d, %v", name, sum, err)
		}
		it, err := c.Get(ctx, 7)
		if want := sample(7); err != nil || !reflect.DeepEqual(*it, want) {
			t.Errorf("%s: Get = %+v, %v; want %+v", name, it, err, want)
		}
		if _, err := c.Get(ctx, 0); svcerr.KindOf(err) != svcerr.NotFound {
			t.Errorf("%s: Get(0) error %v, want not_found", name, err)
		}
		in := sample(1)
		got, err := c.Put(ctx, 9, in)
		in.ID = 9
		if err != nil || !reflect.DeepEqual(got, in) {
			t.Errorf("%s: Put = %+v, %v; want %+v", name, got, err, in)
		}
		if got, err := c.Move(ctx, "a b", 7, "n/o?te"); err != nil || got != "a b/7: n/o?te" {
			t.Errorf("%s: Move = %q, %v", name, got, err)
		}
		if got, err := c.File(ctx, "dir/sub/f.txt"); err != nil || got != "file dir/sub/f.txt" {
			t.Errorf("%s: File = %q, %v", name, got, err)
		}
		if got, err := c.Remove(ctx, 5, false); err != nil || got != "5 hard=false" {
			t.Errorf("%s: Remove = %q, %v", name, got, err)
		}
		for _, k := range []svcerr.Kind{svcerr.PermissionDenied, svcerr.Unavailable, svcerr.AlreadyExists} {
			if err := c.Fail(ctx, k.String()); svcerr.KindOf(err) != k {
				t.Errorf("%s: Fail(%s) = %v", name, k, err)
			}
		}
	}
	// Streaming, over gRPC.
	seq, err := clients["grpc"].Count(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for it, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, it.ID)
	}
	if !reflect.DeepEqual(ids, []int64{0, 1, 2}) {
		t.Errorf("Count over gRPC = %v", ids)
	}
	if _, err := clients["http"].Count(ctx, 3); svcerr.KindOf(err) != svcerr.Unimplemented {
		t.Errorf("Count over HTTP: %v, want unimplemented", err)
	}
	// Query parameters, over gRPC, the generated HTTP client and a plain HTTP client.
	limit := 3
	items, err := clients["grpc"].List(ctx, KindB, &limit, []string{"x", "y"})
	if err != nil || len(items) != 3 || items[2].Kind != KindB || !reflect.DeepEqual(items[2].Tags, []string{"x", "y"}) {
		t.Errorf("List over gRPC = %+v, %v", items, err)
	}
	// The generated HTTP client sends the query fields of GET and DELETE routes.
	items, err = clients["http"].List(ctx, KindB, &limit, []string{"x", "y"})
	if err != nil || len(items) != 3 || items[2].Kind != KindB || !reflect.DeepEqual(items[2].Tags, []string{"x", "y"}) {
		t.Errorf("List over HTTP = %+v, %v", items, err)
	}
	for name, c := range clients {
		if got, err := c.Remove(ctx, 8, true); err != nil || got != "8 hard=true" {
			t.Errorf("%s: Remove(8, true) = %q, %v", name, got, err)
		}
	}
	resp, err := http.Get("http://" + httpAddr.String() + "/items?kind=b&limit=3&tags=x&tags=y")
	if err != nil {
		t.Fatal(err)
	}
	var lr struct {
		Result []Item ` + "`json:\"result\"`" + `
	}
	err = json.NewDecoder(resp.Body).Decode(&lr)
	resp.Body.Close()
	listed := lr.Result
	if err != nil || len(listed) != 3 || listed[1].Kind != KindB || !reflect.DeepEqual(listed[1].Tags, []string{"x", "y"}) {
		t.Errorf("GET /items?... = %+v, %v", listed, err)
	}
	req, _ := http.NewRequest(http.MethodDelete, "http://"+httpAddr.String()+"/items/6?hard=true", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var removed struct {
		Removed string ` + "`json:\"removed\"`" + `
	}
	err = json.NewDecoder(resp.Body).Decode(&removed)
	resp.Body.Close()
	if err != nil || removed.Removed != "6 hard=true" {
		t.Errorf("DELETE /items/6?hard=true = %+v, %v", removed, err)
	}
	resp, err = http.Get("http://" + httpAddr.String() + "/items?limit=many")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /items?limit=many: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	_ = time.Second
}
`
