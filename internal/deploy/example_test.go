package deploy_test

import (
	"fmt"
	"log"
	"slices"
	"strings"

	"github.com/svckit/svckit/internal/deploy"
)

// Render writes a kustomize tree for a system. LoadSystem would build the services and
// read their settings from -help; here one service's settings are given directly.
func ExampleRender() {
	settings, err := deploy.ParseUsage(strings.NewReader(`
  FLAG                        ENVIRONMENT       DESCRIPTION
  -http-addr string           HTTP_ADDR         HTTP listener (default ":8080")
  -grpc-addr string           GRPC_ADDR         gRPC listener (default ":8081")
  -admin-addr string          ADMIN_ADDR        admin listener (default ":9090")
  -shutdown-timeout duration  SHUTDOWN_TIMEOUT  shutdown deadline (default 15s)
  -drain-delay duration       DRAIN_DELAY       drain delay (default 0s)
  -tls-cert string            TLS_CERT          certificate for mTLS
  -tls-key string             TLS_KEY           its key
  -tls-ca string              TLS_CA            the CA bundle
  -tls-http string            TLS_HTTP          the HTTP listener: mtls or plain (default "mtls")
`))
	if err != nil {
		log.Fatal(err)
	}
	sys := &deploy.System{Name: "greeter", Services: []deploy.Service{
		{Name: "greeter", Package: "./cmd/greeter", Replicas: 1, Public: true, Settings: settings},
	}}
	files, err := deploy.Render(sys, deploy.Options{Registry: "ghcr.io/acme", Tag: "v1.0.0"})
	if err != nil {
		log.Fatal(err)
	}
	var names []string
	for name := range files {
		if !strings.Contains(name, "/patches/") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	fmt.Println(strings.Join(names, "\n"))
	// Output:
	// base/greeter-env.yaml
	// base/greeter.yaml
	// base/kustomization.yaml
	// base/otel-collector.yaml
	// overlays/dev/jaeger.yaml
	// overlays/dev/kustomization.yaml
	// overlays/dev/namespace.yaml
	// overlays/prod/hpa.yaml
	// overlays/prod/kustomization.yaml
	// overlays/prod/mtls.yaml
	// overlays/prod/namespace.yaml
	// overlays/prod/network-policies.yaml
	// overlays/prod/public.yaml
}
