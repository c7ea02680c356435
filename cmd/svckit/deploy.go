package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/svckit/svckit/internal/deploy"
)

// runDeploy is `svckit deploy render [flags] [DIR]`.
func runDeploy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "render" {
		fmt.Fprintln(stderr, "usage: svckit deploy render [flags] [DIR]   (svckit deploy render -h for the flags)")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
			return 0
		}
		return 2
	}
	fs := flag.NewFlagSet("svckit deploy render", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o deploy.Options
	fs.StringVar(&o.Registry, "registry", "", "image registry and path prefix, e.g. ghcr.io/acme (default: none)")
	fs.StringVar(&o.Tag, "tag", "", "image tag, a release version; never latest (default "+deploy.DefaultTag+")")
	fs.StringVar(&o.Namespace, "namespace", "", "namespace of every object (default: the system's name)")
	fs.StringVar(&o.JWKSURL, "jwks-url", "", "JWKS_URL for services that validate tokens (default: an example identity provider)")
	fs.StringVar(&o.JWTIssuer, "jwt-issuer", "", "JWT_ISSUER for services that validate tokens")
	fs.StringVar(&o.JWTAudience, "jwt-audience", "", "JWT_AUDIENCE for services that validate tokens (default: the system's name)")
	fs.StringVar(&o.TracesEndpoint, "traces-endpoint", "", "OTLP/gRPC host:port of Jaeger or Tempo for the prod overlay's collector")
	fs.StringVar(&o.PostgresHost, "postgres-host", "", "the managed PostgreSQL host of the prod overlay")
	fs.StringVar(&o.Issuer, "issuer", "", "cert-manager issuer of the services' mTLS certificates in prod, Issuer/NAME or ClusterIssuer/NAME (default: an Issuer SYSTEM-ca signing with the CA in Secret SYSTEM-ca)")
	fs.StringVar(&o.TrustDomain, "trust-domain", "", "trust domain of the services' identities, spiffe://DOMAIN/svc/NAME (default svckit.local)")
	fs.StringVar(&o.PublicHost, "public-host", "", "host name of the public service's Ingress in prod (default SYSTEM.example.com)")
	fs.StringVar(&o.PublicIssuer, "public-issuer", "", "cert-manager issuer of the public host's certificate, Issuer/NAME or ClusterIssuer/NAME (default ClusterIssuer/letsencrypt)")
	fs.StringVar(&o.IngressClass, "ingress-class", "", "class of the public Ingress (default nginx)")
	fs.StringVar(&o.IngressNamespace, "ingress-namespace", "", "namespace of the ingress controller, the only one let reach the public service (default ingress-nginx)")
	fs.StringVar(&o.MonitoringNamespace, "monitoring-namespace", "", "namespace of Prometheus, the only one let reach the admin ports (default monitoring)")
	fs.StringVar(&o.SecretStore, "secret-store", "", "External Secrets store of the prod store DSNs and NATS passwords, SecretStore/NAME or ClusterSecretStore/NAME (default ClusterSecretStore/SYSTEM)")
	overlay := fs.String("overlay", "", "render one overlay (dev or prod) as a single YAML stream instead of a kustomize tree")
	out := fs.String("o", "", "write the kustomize tree (or, with -overlay, the stream) here (default: stdout with -overlay, else deploy/k8s)")
	check := fs.Bool("check", false, "write nothing; exit 1 and name the files under -o that differ from what would be rendered")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: svckit deploy render [flags] [DIR]\n\nRenders Kubernetes manifests for the system in DIR (default examples/shop): the services of\nDIR/svckit.yaml, or every cmd/NAME of a service made by svckit new. Each service is built\nand run with -help to learn its settings. Without -overlay it writes a kustomize tree\n(base/, overlays/dev/, overlays/prod/) for kubectl apply -k; with -overlay it prints that\noverlay's objects for kubectl apply -f -.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	dir := "examples/shop"
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if *overlay != "" && !slices.Contains(deploy.Overlays, *overlay) {
		fmt.Fprintf(stderr, "svckit deploy render: -overlay %q: want dev or prod\n", *overlay)
		return 2
	}
	if *check && *overlay != "" {
		fmt.Fprintln(stderr, "svckit deploy render: -check compares a kustomize tree; it does not go with -overlay")
		return 2
	}
	sys, err := deploy.LoadSystem(context.Background(), dir)
	if err != nil {
		fmt.Fprintf(stderr, "svckit deploy render: %v\n", err)
		return 1
	}
	if *overlay != "" {
		b, err := deploy.RenderOverlay(sys, o, *overlay)
		if err != nil {
			fmt.Fprintf(stderr, "svckit deploy render: %v\n", err)
			return 1
		}
		if *out == "" {
			_, err = stdout.Write(b)
		} else {
			err = os.WriteFile(*out, b, 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "svckit deploy render: %v\n", err)
			return 1
		}
		return 0
	}
	files, err := deploy.Render(sys, o)
	if err != nil {
		fmt.Fprintf(stderr, "svckit deploy render: %v\n", err)
		return 1
	}
	target := *out
	if target == "" {
		target = filepath.Join("deploy", "k8s")
	}
	if *check {
		stale, err := files.Check(target)
		if err != nil {
			fmt.Fprintf(stderr, "svckit deploy render: %v\n", err)
			return 1
		}
		for _, f := range stale {
			fmt.Fprintf(stderr, "%s: stale (run svckit deploy render -o %s %s)\n", filepath.Join(target, f), target, dir)
		}
		if len(stale) > 0 {
			return 1
		}
		return 0
	}
	if err := files.Write(target); err != nil {
		fmt.Fprintf(stderr, "svckit deploy render: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %d files under %s (kubectl apply -k %s)\n", len(files), target, filepath.Join(target, "overlays", "dev"))
	return 0
}
