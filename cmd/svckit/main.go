// Command svckit is svckit's command line:
//
//	svckit gen [-type Name[,Name]] [-check] [-breaking REF] [dir]   generate transports; check compatibility
//	svckit new NAME                                 scaffold a new service
//	svckit dev [-replicas NAME=N] [DIR]             run a system of services with a dashboard
//	svckit load -url URL | -grpc ADDR -method M | -openapi DOC -op NAME  load any endpoint
//	svckit certs init DIR | issue -dir DIR NAME...  development CA and service certificates for mTLS
//	svckit deploy render [-overlay dev|prod] [DIR]  Kubernetes manifests for a system or service
//
// In a package, //go:generate go run github.com/svckit/svckit/cmd/svckit gen runs the
// generator on the package's directory. Run svckit COMMAND -h for a command's flags.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand. Each lives in its own file.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is the subcommand table.
func commands() map[string]command {
	return map[string]command{
		"gen":    {"generate endpoints, HTTP, gRPC and NATS transports and clients, .proto and OpenAPI from a Go interface; -breaking REF: fail on changes that break callers", runGen},
		"new":    {"scaffold a new service: interface, implementation, main, test, Dockerfile", runNew},
		"dev":    {"run a whole system locally: every service supervised, embedded NATS, dashboard", runDev},
		"load":   {"load any HTTP endpoint, gRPC method or OpenAPI operation at a fixed concurrency or rate; print rate, p50/p90/p99, failures", runLoad},
		"certs":  {"mTLS between services: create a development CA (certs init), issue service certificates (certs issue)", runCerts},
		"deploy": {"render Kubernetes manifests (kustomize base, dev and prod overlays) for a system or service", runDeploy},
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "svckit: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: svckit COMMAND [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-6s %s\n", n, cmds[n].summary)
	}
}
