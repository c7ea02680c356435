// Command greeter is a service in a directory without svckit.yaml, for the tests of
// discovery: svckit dev finds it because it is a main package that imports svckit.
package main

import (
	"context"

	"github.com/svckit/svckit"
)

func main() {
	svckit.Main("greeter", &svckit.Config{}, func(context.Context, *svckit.App) error { return nil })
}
