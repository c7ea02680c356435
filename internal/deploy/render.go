package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/svckit/svckit/mtls"
)

// The overlays the renderer writes.
const (
	Dev  = "dev"
	Prod = "prod"
)

// Overlays lists the overlays in the order they are rendered.
var Overlays = []string{Dev, Prod}

// The probe paths of every svckit service's admin listener (package health's AdminMux).
const (
	LivenessPath  = "/healthz"
	ReadinessPath = "/readyz"
	MetricsPath   = "/metrics"
)

// The settings of svckit.Config, StoreConfig and NATSConfig that the renderer fills in.
const (
	envHTTPAddr        = "HTTP_ADDR"
	envGRPCAddr        = "GRPC_ADDR"
	envAdminAddr       = "ADMIN_ADDR"
	envLogLevel        = "LOG_LEVEL"
	envShutdownTimeout = "SHUTDOWN_TIMEOUT"
	envDrainDelay      = "DRAIN_DELAY"
	envStoreDSN        = "STORE_DSN"
	envNATSURL         = "NATS_URL"
	envInstanceID      = "INSTANCE_ID"
	envStreamReplicas  = "NATS_REPLICAS"
	envJWKSURL         = "JWKS_URL"
	envJWTIssuer       = "JWT_ISSUER"
	envJWTAudience     = "JWT_AUDIENCE"
)

// PlatformEnv lists the environment variables the manifests may set that are not
// settings of the services' config structs: the OpenTelemetry variables that package
// observe and the OTLP exporter read directly.
var PlatformEnv = []string{
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_TRACES_SAMPLER",
	"OTEL_TRACES_SAMPLER_ARG",
}

func isPlatformEnv(name string) bool { return slices.Contains(PlatformEnv, name) }

// Shutdown timing every service gets: the drain delay keeps a terminating pod serving
// while endpoints are removed, and the grace period covers drain, shutdown and closers.
const (
	drainDelay      = 5 * time.Second
	shutdownTimeout = 20 * time.Second
	closeMargin     = 15 * time.Second
)

// Options says what to render.
type Options struct {
	// Registry is prepended to image names: "ghcr.io/acme" gives
	// ghcr.io/acme/shop-catalog. Default: none (images as `docker build -t` names them).
	Registry string
	// Tag is the image tag, a release version; default [DefaultTag]. "latest" is
	// refused: a moving tag deploys whatever was pushed last, and with
	// imagePullPolicy IfNotPresent each node keeps the one it pulled first.
	Tag string
	// Namespace is the namespace of every object; default the system's name.
	Namespace string
	// JWKSURL, JWTIssuer and JWTAudience configure token validation for services that
	// have those settings (JWKS_URL, JWT_ISSUER, JWT_AUDIENCE). Defaults: an example
	// identity provider, and the system's name as audience.
	JWKSURL, JWTIssuer, JWTAudience string
	// TracesEndpoint is the OTLP/gRPC endpoint (host:port) the OpenTelemetry Collector
	// exports traces to in the prod overlay (Jaeger or Tempo). The dev overlay runs
	// Jaeger in the cluster. Default "tempo-distributor.observability.svc:4317".
	TracesEndpoint string
	// PostgresHost is the managed PostgreSQL server the prod overlay points the
	// "postgres" ExternalName Service at. Default "postgres.example.internal".
	PostgresHost string

	// Issuer is the cert-manager issuer of the services' mTLS certificates in the prod
	// overlay, "Issuer/NAME" or "ClusterIssuer/NAME". Default: an Issuer SYSTEM-ca that
	// the prod overlay defines, a CA issuer whose CA certificate and key are in the
	// Secret SYSTEM-ca (made by `svckit certs init`, never committed).
	Issuer string
	// TrustDomain is the trust domain of the services' identities,
	// spiffe://TRUST-DOMAIN/svc/SERVICE; default mtls.DefaultTrustDomain. The issuer's CA
	// must be allowed to sign it.
	TrustDomain string
	// PublicHost is the host name of the public service's Ingress; default
	// SYSTEM.example.com.
	PublicHost string
	// PublicIssuer issues the public host's certificate, "Issuer/NAME" or
	// "ClusterIssuer/NAME"; default "ClusterIssuer/letsencrypt".
	PublicIssuer string
	// IngressClass is the class of the public Ingress; default "nginx".
	IngressClass string
	// IngressNamespace is the namespace of the ingress controller's pods, the only
	// ones the prod NetworkPolicies let reach the public service; default
	// "ingress-nginx".
	IngressNamespace string
	// MonitoringNamespace is the namespace of Prometheus, the only one the prod
	// NetworkPolicies let reach the admin ports; default "monitoring".
	MonitoringNamespace string
	// SecretStore is the External Secrets store the prod overlay's Secrets come from
	// (store DSNs, NATS passwords), "SecretStore/NAME" or "ClusterSecretStore/NAME";
	// default "ClusterSecretStore/SYSTEM".
	SecretStore string
}

// DefaultTag is the image tag when [Options] names none.
const DefaultTag = "0.1.0"

func (o Options) withDefaults(sys *System) Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Tag, DefaultTag)
	def(&o.Namespace, sys.Name)
	def(&o.JWKSURL, "https://auth.example.com/.well-known/jwks.json")
	def(&o.JWTIssuer, "https://auth.example.com/")
	def(&o.JWTAudience, sys.Name)
	def(&o.TracesEndpoint, "tempo-distributor.observability.svc:4317")
	def(&o.PostgresHost, "postgres.example.internal")
	def(&o.TrustDomain, mtls.DefaultTrustDomain)
	def(&o.PublicHost, sys.Name+".example.com")
	def(&o.PublicIssuer, "ClusterIssuer/letsencrypt")
	def(&o.IngressClass, "nginx")
	def(&o.IngressNamespace, "ingress-nginx")
	def(&o.MonitoringNamespace, "monitoring")
	def(&o.SecretStore, "ClusterSecretStore/"+sys.Name)
	o.Registry = strings.TrimSuffix(o.Registry, "/")
	return o
}

var (
	tagRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	hostRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$`)
)

// validate checks options after withDefaults.
func (o Options) validate() error {
	switch {
	case o.Tag == "latest":
		return errors.New("deploy: -tag latest: give a release version; a moving tag deploys whatever was pushed last")
	case !tagRE.MatchString(o.Tag):
		return fmt.Errorf("deploy: -tag %q is not an image tag", o.Tag)
	}
	for _, ns := range []struct{ what, v string }{{"namespace", o.Namespace}, {"ingress-namespace", o.IngressNamespace}, {"monitoring-namespace", o.MonitoringNamespace}} {
		if !dnsLabelRE.MatchString(ns.v) {
			return fmt.Errorf("deploy: -%s %q is not a namespace name", ns.what, ns.v)
		}
	}
	if !hostRE.MatchString(o.PublicHost) {
		return fmt.Errorf("deploy: -public-host %q is not a host name", o.PublicHost)
	}
	if _, err := mtls.NewIdentity(o.TrustDomain, "x"); err != nil {
		return fmt.Errorf("deploy: -trust-domain: %w", err)
	}
	for _, r := range []struct{ what, v string }{{"issuer", o.Issuer}, {"public-issuer", o.PublicIssuer}} {
		if r.v == "" && r.what == "issuer" {
			continue
		}
		if _, _, err := kindName(r.v, "Issuer", "ClusterIssuer"); err != nil {
			return fmt.Errorf("deploy: -%s: %w", r.what, err)
		}
	}
	if _, _, err := kindName(o.SecretStore, "SecretStore", "ClusterSecretStore"); err != nil {
		return fmt.Errorf("deploy: -secret-store: %w", err)
	}
	return nil
}

// kindName splits a reference "KIND/NAME" whose kind must be one of kinds.
func kindName(ref string, kinds ...string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok || !slices.Contains(kinds, kind) || !dnsSubdomain(name) {
		return "", "", fmt.Errorf("%q: want %s/NAME", ref, strings.Join(kinds, "/NAME or "))
	}
	return kind, name, nil
}

func dnsSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// Image returns the image name of a service without registry or tag: the service's
// name prefixed with the system's ("shop-catalog"), or the service's name alone when it
// is the system's only service of the same name.
func Image(sys *System, svc string) string {
	if svc == sys.Name {
		return svc
	}
	return sys.Name + "-" + svc
}

// profile holds what differs between the base and the overlays.
type profile struct {
	overlay        string // "" for the base
	logLevel       string
	sampler        string
	samplerArg     string
	streamReplicas int
	natsReplicas   int
	tracesEndpoint string
	tracesInsecure bool
	hpa            bool
	minReplicas    int
	resources      omap
	mtls           bool // services get their certificates and talk mTLS
	natsTLS        bool // the NATS servers have TLS on the client port and the routes
}

func profileFor(overlay string, o Options) (profile, error) {
	p := profile{
		logLevel: "info", sampler: "parentbased_always_on", samplerArg: "1.0", streamReplicas: 1,
		natsReplicas: 1, tracesEndpoint: "jaeger:4317", tracesInsecure: true,
		resources: resources("50m", "96Mi", "500m", "256Mi"),
	}
	switch overlay {
	case "":
	case Dev:
		p.overlay, p.logLevel, p.sampler = Dev, "debug", "always_on"
	case Prod:
		p.overlay, p.sampler, p.samplerArg = Prod, "parentbased_traceidratio", "0.1"
		p.streamReplicas, p.natsReplicas = 3, 3
		p.tracesEndpoint, p.tracesInsecure = o.TracesEndpoint, false
		p.hpa, p.minReplicas = true, 2
		p.resources = resources("250m", "128Mi", "1", "512Mi")
		p.mtls, p.natsTLS = true, true
	default:
		return profile{}, fmt.Errorf("deploy: unknown overlay %q (want %s)", overlay, strings.Join(Overlays, " or "))
	}
	return p, nil
}

func resources(cpuReq, memReq, cpuLim, memLim string) omap {
	return omap{
		{"requests", omap{{"cpu", cpuReq}, {"memory", memReq}}},
		{"limits", omap{{"cpu", cpuLim}, {"memory", memLim}}},
	}
}

// doc is one object and the file it goes to.
type doc struct {
	file string
	obj  omap
}

// Files is a rendered tree: paths relative to its root, slash-separated, and contents.
type Files map[string][]byte

// Render renders a kustomize tree for the system: base/ with every service's Deployment,
// Services, PodDisruptionBudget and the shared ConfigMap, NATS and an OpenTelemetry
// Collector, NATS with a user per service; overlays/dev with a single-node NATS, an
// in-cluster PostgreSQL holding a database per service and Jaeger; overlays/prod with a
// three-node NATS JetStream cluster with TLS, HorizontalPodAutoscalers, managed
// PostgreSQL and larger resources.
// `kubectl kustomize overlays/NAME` gives what [RenderOverlay] returns for NAME.
func Render(sys *System, o Options) (Files, error) {
	if err := sys.validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults(sys)
	if err := o.validate(); err != nil {
		return nil, err
	}
	if _, err := renderOverlay(sys, o, Prod); err != nil {
		return nil, err
	}
	baseP, _ := profileFor("", o)
	base := baseDocs(sys, o, baseP)
	files := Files{}
	var order []string
	byFile := map[string][]omap{}
	for _, d := range base {
		if _, ok := byFile[d.file]; !ok {
			order = append(order, d.file)
		}
		byFile[d.file] = append(byFile[d.file], d.obj)
	}
	for _, f := range order {
		if err := files.add("base/"+f, byFile[f]...); err != nil {
			return nil, err
		}
	}
	if err := files.add("base/kustomization.yaml", kustomization(order, nil, nil, "")); err != nil {
		return nil, err
	}
	for _, ov := range Overlays {
		p, _ := profileFor(ov, o)
		var resFiles []string
		extra := map[string][]omap{}
		for _, d := range overlayDocs(sys, o, p) {
			if _, ok := extra[d.file]; !ok {
				resFiles = append(resFiles, d.file)
			}
			extra[d.file] = append(extra[d.file], d.obj)
		}
		for _, f := range resFiles {
			if err := files.add("overlays/"+ov+"/"+f, extra[f]...); err != nil {
				return nil, err
			}
		}
		var patches []string
		patched := baseDocs(sys, o, p)
		for i, b := range base {
			d, err := diff(describeObj(b.obj), b.obj, patched[i].obj)
			if err != nil {
				return nil, err
			}
			if len(d) == 0 {
				continue
			}
			kind, _ := b.obj.get("kind")
			name := objName(b.obj)
			patch := append(omap{{"apiVersion", mustGet(b.obj, "apiVersion")}, {"kind", kind},
				{"metadata", omap{{"name", name}}}}, d...)
			f := "patches/" + name + "-" + strings.ToLower(kind.(string)) + ".yaml"
			patches = append(patches, f)
			if err := files.add("overlays/"+ov+"/"+f, patch); err != nil {
				return nil, err
			}
		}
		var images []any
		for _, s := range sys.Services {
			img := omap{{"name", Image(sys, s.Name)}}
			if o.Registry != "" {
				img = append(img, kv{"newName", o.Registry + "/" + Image(sys, s.Name)})
			}
			images = append(images, append(img, kv{"newTag", o.Tag}))
		}
		res := append([]string{"../../base"}, resFiles...)
		if err := files.add("overlays/"+ov+"/kustomization.yaml", kustomization(res, patches, images, o.Namespace)); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// RenderOverlay renders the objects of one overlay as a single YAML stream, with the
// namespace and images applied, ready for kubectl apply -f -. The prod overlay must pass
// [CheckProduction].
func RenderOverlay(sys *System, o Options, overlay string) ([]byte, error) {
	if err := sys.validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults(sys)
	if err := o.validate(); err != nil {
		return nil, err
	}
	return renderOverlay(sys, o, overlay)
}

func renderOverlay(sys *System, o Options, overlay string) ([]byte, error) {
	p, err := profileFor(overlay, o)
	if err != nil {
		return nil, err
	}
	var objs []omap
	for _, d := range overlayDocs(sys, o, p) {
		if kind, _ := d.obj.get("kind"); kind == "Namespace" {
			objs = append(objs, d.obj)
		}
	}
	for _, d := range append(baseDocs(sys, o, p), overlayDocs(sys, o, p)...) {
		if kind, _ := d.obj.get("kind"); kind == "Namespace" {
			continue
		}
		objs = append(objs, finish(d.obj, sys, o))
	}
	var b bytes.Buffer
	if err := encodeDocs(&b, header, objs...); err != nil {
		return nil, err
	}
	if overlay == Prod {
		decoded, err := ReadObjects(bytes.NewReader(b.Bytes()))
		if err != nil {
			return nil, err
		}
		if err := CheckProduction(decoded, sys, o); err != nil {
			return nil, fmt.Errorf("deploy: the prod overlay is not fit for production:\n%w", err)
		}
	}
	return b.Bytes(), nil
}

// finish sets the namespace and the full image names, as kustomize does for an overlay.
func finish(obj omap, sys *System, o Options) omap {
	meta := mustGet(obj, "metadata").(omap)
	name, _ := meta.get("name")
	rest := meta.without("name")
	obj = obj.set("metadata", append(omap{{"name", name}, {"namespace", o.Namespace}}, rest...))
	images := map[string]string{}
	for _, s := range sys.Services {
		img := Image(sys, s.Name)
		full := img
		if o.Registry != "" {
			full = o.Registry + "/" + img
		}
		images[img] = full + ":" + o.Tag
	}
	if kind, _ := obj.get("kind"); kind == "Deployment" {
		spec := mustGet(obj, "spec").(omap)
		tmpl := mustGet(spec, "template").(omap)
		pod := mustGet(tmpl, "spec").(omap)
		for _, c := range mustGet(pod, "containers").([]any) {
			c := c.(omap)
			if img, _ := c.get("image"); images[img.(string)] != "" {
				c.set("image", images[img.(string)])
			}
		}
	}
	return obj
}

func mustGet(m omap, k string) any {
	v, ok := m.get(k)
	if !ok {
		panic("deploy: missing " + k) // the renderer's own objects always have it
	}
	return v
}

func objName(obj omap) string {
	n, _ := mustGet(obj, "metadata").(omap).get("name")
	return n.(string)
}

func kustomization(resources, patches []string, images []any, namespace string) omap {
	k := omap{{"apiVersion", "kustomize.config.k8s.io/v1beta1"}, {"kind", "Kustomization"}}
	if namespace != "" {
		k = append(k, kv{"namespace", namespace})
	}
	k = append(k, kv{"resources", toAny(resources)})
	if len(patches) > 0 {
		var ps []any
		for _, p := range patches {
			ps = append(ps, omap{{"path", p}})
		}
		k = append(k, kv{"patches", ps})
	}
	if len(images) > 0 {
		k = append(k, kv{"images", images})
	}
	return k
}

func toAny[T any](l []T) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = v
	}
	return out
}

func (f Files) add(name string, objs ...omap) error {
	var b bytes.Buffer
	if err := encodeDocs(&b, header, objs...); err != nil {
		return err
	}
	f[name] = b.Bytes()
	return nil
}

// Write writes the tree under dir and removes rendered files (those starting with the
// generated-code header) that the tree no longer has.
func (f Files) Write(dir string) error {
	stale, err := f.stale(dir)
	if err != nil {
		return err
	}
	for _, name := range stale {
		if _, ok := f[name]; !ok {
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
				return fmt.Errorf("deploy: %w", err)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(f)) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
		if err := os.WriteFile(p, f[name], 0o644); err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
	}
	return nil
}

// Check compares the tree with the files under dir and returns the paths that differ:
// missing, changed, or rendered earlier and no longer part of the tree.
func (f Files) Check(dir string) ([]string, error) {
	return f.stale(dir)
}

func (f Files) stale(dir string) ([]string, error) {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(f)) {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("deploy: %w", err)
		}
		if !bytes.Equal(b, f[name]) {
			out = append(out, name)
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipDir
		}
		if err != nil || d.IsDir() || path.Ext(p) != ".yaml" {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := f[rel]; ok {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && generated(b) {
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	sort.Strings(out)
	return out, nil
}
