package compat_test

import (
	"fmt"
	"path/filepath"

	"github.com/svckit/svckit/internal/compat"
)

// Compare two saved contracts: v2 adds a method (compatible) and puts a new field
// before name, which renumbers it (breaking). A contract read from a Go package
// (compat.FromPackage) or a git revision (compat.OpenRef) compares the same way.
func ExampleCompare() {
	old, err := compat.LoadFiles([]string{"testdata/example/v1"}, filepath.ToSlash)
	if err != nil {
		fmt.Println(err)
		return
	}
	cur, err := compat.LoadFiles([]string{"testdata/example/v2"}, filepath.ToSlash)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range compat.Compare(old, cur) {
		fmt.Println(f.Break, f)
	}
	// Output:
	// true testdata/example/v2/greeter.proto:12: HelloRequest (greeter.Greeter.Hello request): field name: number changed from 1 to 2 (add fields at the end)
	// true testdata/example/v2/greeter.proto:11: HelloRequest (greeter.Greeter.Hello request): field language (number 1) added with the number callers send name with
	// false testdata/example/v2/greeter.proto:7: method greeter.Greeter.Bye added
}
