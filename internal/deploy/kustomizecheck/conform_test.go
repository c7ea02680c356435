package kustomizecheck

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/yannh/kubeconform/pkg/validator"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/svckit/svckit/internal/deploy"
)

// shopTree is the shop's checked-in tree; SVCKIT_K8S_TREE names another (an older
// render, say) to check instead.
func shopTree() string {
	if d := os.Getenv("SVCKIT_K8S_TREE"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "deploy", "k8s")
}

// build returns kustomize's output for an overlay as one YAML stream.
func build(t *testing.T, dir string) []byte {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	b, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// conform validates every object of a YAML stream with kubeconform in strict mode
// against the schemas of kubeSchemas, and returns one line per object that fails.
func conform(t *testing.T, stream []byte) []string {
	t.Helper()
	sd := kubeSchemas(t)
	v, err := validator.New([]string{filepath.Join(sd.dir, "{{ .ResourceKind }}{{ .KindSuffix }}.json")},
		validator.Opts{Strict: true, KubernetesVersion: strings.TrimPrefix(schemaModules["k8s.io/kubernetes"].version, "v")})
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	n := 0
	for _, r := range v.Validate("stream", io.NopCloser(bytes.NewReader(stream))) {
		if r.Status == validator.Empty {
			continue
		}
		n++
		if r.Status == validator.Valid {
			continue
		}
		sig, _ := r.Resource.Signature()
		name := "?"
		if sig != nil {
			name = sig.Kind + "/" + sig.Name
		}
		var details []string
		for _, e := range r.ValidationErrors {
			details = append(details, e.Path+": "+e.Msg)
		}
		bad = append(bad, fmt.Sprintf("%s: %v %s", name, r.Err, strings.Join(details, "; ")))
	}
	objs, err := deploy.ReadObjects(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(objs) {
		t.Errorf("kubeconform saw %d objects, the stream has %d", n, len(objs))
	}
	return bad
}

var (
	shopOnce sync.Once
	shopSys  *deploy.System
	shopErr  error
)

// shopSystem builds the shop's services and reads their settings, once.
func shopSystem(t *testing.T) *deploy.System {
	t.Helper()
	shopOnce.Do(func() {
		shopSys, shopErr = deploy.LoadSystem(context.Background(), filepath.Join("..", "..", "..", "examples", "shop"))
	})
	if shopErr != nil {
		t.Fatal(shopErr)
	}
	return shopSys
}

// TestConform validates every object of both overlays of the shop's tree — the
// Kubernetes API's kinds and the cert-manager and External Secrets custom resources —
// with kubeconform in strict mode: an unknown or misplaced field, a wrong type or a
// missing required field fails.
func TestConform(t *testing.T) {
	for _, ov := range deploy.Overlays {
		t.Run(ov, func(t *testing.T) {
			for _, b := range conform(t, build(t, filepath.Join(shopTree(), "overlays", ov))) {
				t.Error(b)
			}
		})
	}
}

// TestConformCatches checks that the schemas are strict: each edit of a valid prod
// overlay is refused.
func TestConformCatches(t *testing.T) {
	prod := string(build(t, filepath.Join(shopTree(), "overlays", deploy.Prod)))
	tests := []struct{ name, old, new, want string }{
		{"misspelled field", "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true", "Deployment/"},
		{"wrong type", "maxSkew: 1", "maxSkew: one", "Deployment/"},
		{"unknown Certificate field", "  secretName: catalog-mtls\n  uris:", "  secretName: catalog-mtls\n  uri: spiffe://x/svc/y\n  uris:", "Certificate/catalog-mtls"},
		{"Certificate usage", "- client auth\n", "- client authentication\n", "Certificate/"},
		{"ExternalSecret field", "  refreshInterval: 1h\n", "  refreshInterval: 1h\n  refresh: 1h\n", "ExternalSecret/"},
		{"NetworkPolicy field", "  policyTypes:\n", "  policyType: Ingress\n  policyTypes:\n", "NetworkPolicy/"},
		{"Ingress field", "ingressClassName: nginx", "ingressClass: nginx", "Ingress/"},
		{"Issuer kind", "  ca:\n    secretName: shop-ca\n", "  ca:\n    secret: shop-ca\n", "Issuer/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(prod, tt.old) {
				t.Fatalf("the prod overlay has no %q", tt.old)
			}
			bad := conform(t, []byte(strings.Replace(prod, tt.old, tt.new, 1)))
			if len(bad) != 1 || !strings.HasPrefix(bad[0], tt.want) {
				t.Errorf("kubeconform: %q; want one failure of %s", bad, tt.want)
			}
		})
	}
}

// TestPodSecurity evaluates every pod template of both overlays against the restricted
// Pod Security Standard at the latest version, with the checks the API server's Pod
// Security admission runs; the namespaces enforce it.
func TestPodSecurity(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for _, ov := range deploy.Overlays {
		t.Run(ov, func(t *testing.T) {
			objs, err := deploy.ReadObjects(bytes.NewReader(build(t, filepath.Join(shopTree(), "overlays", ov))))
			if err != nil {
				t.Fatal(err)
			}
			pods := 0
			for _, o := range objs {
				var tmpl any
				switch o.Kind() {
				case "Deployment":
					tmpl = &appsv1.Deployment{}
				case "StatefulSet":
					tmpl = &appsv1.StatefulSet{}
				case "Namespace":
					if l, _ := o.Get("metadata", "labels", "pod-security.kubernetes.io/enforce").(string); l != "restricted" {
						t.Errorf("%s: enforces %q, want restricted", o.ID(), l)
					}
					continue
				default:
					continue
				}
				j, err := yaml.Marshal(map[string]any(o))
				if err != nil {
					t.Fatal(err)
				}
				if err := yaml.Unmarshal(j, tmpl); err != nil {
					t.Fatal(err)
				}
				spec := podTemplate(tmpl)
				pods++
				for _, r := range eval.EvaluatePod(restricted, &spec.ObjectMeta, &spec.Spec) {
					if !r.Allowed {
						t.Errorf("%s: restricted Pod Security: %s: %s", o.ID(), r.ForbiddenReason, r.ForbiddenDetail)
					}
				}
			}
			if pods == 0 {
				t.Error("no pod templates")
			}
		})
	}
}

// TestProduction checks the shop's prod overlay, as kustomize builds it, with
// deploy.CheckProduction against the services' real settings, and asserts directly what
// issue 13 asks of it: every service has a NetworkPolicy of its own under a default
// deny, and mounts the certificate of its own identity.
func TestProduction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shop's services")
	}
	sys := shopSystem(t)
	objs, err := deploy.ReadObjects(bytes.NewReader(build(t, filepath.Join(shopTree(), "overlays", deploy.Prod))))
	if err != nil {
		t.Fatal(err)
	}
	if err := deploy.CheckProduction(objs, sys, deploy.Options{}); err != nil {
		t.Errorf("the shop's prod overlay:\n%v", err)
	}
	byID := map[string]deploy.Object{}
	for _, o := range objs {
		byID[o.ID()] = o
	}
	if _, ok := byID["NetworkPolicy/default-deny"]; !ok {
		t.Error("no NetworkPolicy default-deny")
	}
	for _, s := range sys.Services {
		pol, ok := byID["NetworkPolicy/"+s.Name]
		if !ok {
			t.Errorf("service %s: no NetworkPolicy", s.Name)
		} else if sel, _ := pol.Get("spec", "podSelector", "matchLabels", "app.kubernetes.io/name").(string); sel != s.Name {
			t.Errorf("NetworkPolicy/%s selects %q", s.Name, sel)
		}
		cert, ok := byID["Certificate/"+s.Name+"-mtls"]
		if !ok {
			t.Errorf("service %s: no Certificate", s.Name)
			continue
		}
		if uris, _ := cert.Get("spec", "uris").([]any); !slices.Equal(uris, []any{"spiffe://svckit.local/svc/" + s.Name}) {
			t.Errorf("Certificate/%s-mtls: uris %v", s.Name, uris)
		}
		dep := byID["Deployment/"+s.Name]
		env := map[string]any{}
		for _, c := range asList(dep.Get("spec", "template", "spec", "containers")) {
			for _, e := range asList(asMap(c)["env"]) {
				env[fmt.Sprint(asMap(e)["name"])] = asMap(e)["value"]
			}
		}
		mounted := false
		for _, v := range asList(dep.Get("spec", "template", "spec", "volumes")) {
			mounted = mounted || asMap(asMap(v)["secret"])["secretName"] == cert.Get("spec", "secretName")
		}
		if !mounted || env["TLS_CERT"] == nil || env["TLS_KEY"] == nil || env["TLS_CA"] == nil {
			t.Errorf("Deployment/%s: certificate Secret mounted %v, TLS_CERT %v, TLS_KEY %v, TLS_CA %v", s.Name, mounted, env["TLS_CERT"], env["TLS_KEY"], env["TLS_CA"])
		}
		if _, nats := s.Setting("NATS_URL"); nats {
			var pwSecret any
			for _, c := range asList(dep.Get("spec", "template", "spec", "containers")) {
				for _, e := range asList(asMap(c)["env"]) {
					if asMap(e)["name"] == "NATS_PASSWORD" {
						pwSecret = asMap(asMap(asMap(e)["valueFrom"])["secretKeyRef"])["name"]
					}
				}
			}
			if _, external := byID[fmt.Sprint("ExternalSecret/", pwSecret)]; env["NATS_USER"] != s.Name || !external || env["NATS_TLS_CA"] == nil {
				t.Errorf("Deployment/%s: NATS_USER %v, NATS_PASSWORD from Secret %v (an ExternalSecret: %v), NATS_TLS_CA %v", s.Name, env["NATS_USER"], pwSecret, external, env["NATS_TLS_CA"])
			}
		}
	}
	// NATS: users, no anonymous clients, TLS on the client port and the routes.
	conf, _ := byID["ConfigMap/nats-config"].Get("data", "nats.conf").(string)
	for _, want := range []string{"authorization {", "\ntls {", "cluster {", "  tls {"} {
		if !strings.Contains(conf, want) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	for _, s := range sys.Services {
		if !strings.Contains(conf, fmt.Sprintf("{user: %q, password: $NATS_PASSWORD_%s,", s.Name, strings.ToUpper(s.Name))) {
			t.Errorf("nats.conf: no user %s whose password comes from the pod's environment", s.Name)
		}
	}
	if _, ok := byID["Certificate/nats-tls"]; !ok {
		t.Error("no Certificate nats-tls for the NATS servers")
	}
}

// TestProductionCatchesNATS checks that deploy.CheckProduction, on the shop's prod
// overlay as kustomize builds it, catches NATS open to anonymous clients or without TLS.
func TestProductionCatchesNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shop's services")
	}
	sys := shopSystem(t)
	prod := string(build(t, filepath.Join(shopTree(), "overlays", deploy.Prod)))
	tests := []struct{ name, old, new, want string }{
		{"anonymous", "authorization {", "not_authorization {", "no authorization block"},
		{"client port in the clear", "    tls {\n      cert_file", "    not_tls {\n      cert_file", "no TLS on the client port"},
		{"routes in the clear", "      tls {\n        cert_file", "      not_tls {\n        cert_file", "no TLS on the routes"},
		{"password in the clear", "password: $NATS_PASSWORD_ORDERS", `password: "orders"`, "user orders: the password is written"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(prod, tt.old) {
				t.Fatalf("the prod overlay has no %q", tt.old)
			}
			objs, err := deploy.ReadObjects(strings.NewReader(strings.Replace(prod, tt.old, tt.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if err := deploy.CheckProduction(objs, sys, deploy.Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckProduction = %v, want %q", err, tt.want)
			}
		})
	}
}

// podTemplate returns the pod template of a decoded workload.
func podTemplate(w any) *corev1.PodTemplateSpec {
	switch o := w.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	}
	return nil
}
