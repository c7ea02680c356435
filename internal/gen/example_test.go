package gen_test

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/svckit/svckit/internal/gen"
)

// Example generates the files of a package and lists them. gen.Write would write them
// (never over a hand-written file), and gen.Check would list the stale ones.
func Example() {
	dir := filepath.Join("testdata", "golden", "stream")
	files, err := gen.Generate(dir, gen.Options{})
	if err != nil {
		log.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	for _, f := range files {
		rel, _ := filepath.Rel(abs, f.Path)
		fmt.Println(filepath.ToSlash(rel))
	}
	// Output:
	// service_gen.go
	// pbconv_gen.go
	// pb/doc_gen.go
	// pb/stream_pb_gen.go
	// pb/descriptor_gen.go
	// pb/stream/stream.proto
	// stream.openapi.json
}
