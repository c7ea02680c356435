package kustomizecheck

import (
	"bytes"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/svckit/svckit/internal/deploy"
)

// kustomize builds dir as `kubectl kustomize dir` does and returns its objects, each
// also decoded strictly into its Kubernetes API type: a misspelled or misplaced field,
// or a quantity that does not parse, fails.
func kustomize(t *testing.T, dir string) []deploy.Object {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	for _, r := range m.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var typed any
		switch r.GetKind() {
		case "Deployment":
			typed = &appsv1.Deployment{}
		case "StatefulSet":
			typed = &appsv1.StatefulSet{}
		case "Service":
			typed = &corev1.Service{}
		case "ConfigMap":
			typed = &corev1.ConfigMap{}
		case "Secret":
			typed = &corev1.Secret{}
		case "Namespace":
			typed = &corev1.Namespace{}
		case "PodDisruptionBudget":
			typed = &policyv1.PodDisruptionBudget{}
		case "HorizontalPodAutoscaler":
			typed = &autoscalingv2.HorizontalPodAutoscaler{}
		case "NetworkPolicy":
			typed = &networkingv1.NetworkPolicy{}
		case "Ingress":
			typed = &networkingv1.Ingress{}
		case "Certificate", "Issuer", "ExternalSecret":
			// Custom resources: TestConform validates them against their CRDs' schemas.
			continue
		default:
			t.Errorf("%s: kind %s has no strict check here", dir, r.GetKind())
			continue
		}
		j, err := yaml.YAMLToJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		// Case-sensitive, as the API server decodes: encoding/json would accept
		// readOnlyRootFileSystem for readOnlyRootFilesystem.
		strict, err := kjson.UnmarshalStrict(j, typed, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil || len(strict) > 0 {
			t.Errorf("%s: %s/%s does not decode strictly into %T: %v %v", dir, r.GetKind(), r.GetName(), typed, err, strict)
		}
		checkSelectors(t, typed)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := deploy.ReadObjects(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// checkSelectors parses the label selectors of workloads as the API server would.
func checkSelectors(t *testing.T, typed any) {
	t.Helper()
	var sel *metav1.LabelSelector
	switch o := typed.(type) {
	case *appsv1.Deployment:
		sel = o.Spec.Selector
	case *appsv1.StatefulSet:
		sel = o.Spec.Selector
	case *policyv1.PodDisruptionBudget:
		sel = o.Spec.Selector
	default:
		return
	}
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil || sel == nil {
		t.Errorf("%T: selector %v: %v", typed, sel, err)
	}
}

func same(got, want []deploy.Object) error {
	index := func(objs []deploy.Object) map[string]deploy.Object {
		m := map[string]deploy.Object{}
		for _, o := range objs {
			m[o.ID()] = o
		}
		return m
	}
	g, w := index(got), index(want)
	var diffs []string
	for id, o := range w {
		if !reflect.DeepEqual(g[id], o) {
			diffs = append(diffs, fmt.Sprintf("%s:\n kustomize %v\n      want %v", id, g[id], o))
		}
	}
	for id := range g {
		if _, ok := w[id]; !ok {
			diffs = append(diffs, id+": only in kustomize's output")
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		return fmt.Errorf("%s", strings.Join(diffs, "\n"))
	}
	return nil
}

// TestShopTree builds each overlay of the shop's checked-in tree with kustomize and
// compares it with deploy.BuildTree, which the svckit module's tests check against the
// services' configuration and against svckit deploy render -overlay.
func TestShopTree(t *testing.T) {
	for _, ov := range deploy.Overlays {
		t.Run(ov, func(t *testing.T) {
			dir := filepath.Join(shopTree(), "overlays", ov)
			got := kustomize(t, dir)
			want, err := deploy.BuildTree(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := same(got, want); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestRenderedTree renders a system with every option set and checks that kustomize
// builds each overlay into exactly what deploy.RenderOverlay returns.
func TestRenderedTree(t *testing.T) {
	parse := func(text string) []deploy.Setting {
		s, err := deploy.ParseUsage(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	common := `  FLAG  ENVIRONMENT  DESCRIPTION
  -http-addr string           HTTP_ADDR           HTTP (default ":8080")
  -grpc-addr string           GRPC_ADDR           gRPC (default ":8081")
  -admin-addr string          ADMIN_ADDR          admin (default ":9090")
  -log-level level            LOG_LEVEL           level (default info)
  -shutdown-timeout duration  SHUTDOWN_TIMEOUT    shutdown (default 15s)
  -drain-delay duration       DRAIN_DELAY         drain (default 0s)
  -nats-url string            NATS_URL            NATS
  -nats-user string           NATS_USER           NATS user
  -nats-password string       NATS_PASSWORD       its password
  -nats-tls-ca string         NATS_TLS_CA         NATS CA bundle
  -nats-replicas int          NATS_REPLICAS       stream replicas (default 1)
  -tls-cert string            TLS_CERT            certificate (mTLS)
  -tls-key string             TLS_KEY             its key
  -tls-ca string              TLS_CA              CA bundle
  -tls-http string            TLS_HTTP            mtls or plain (default "mtls")
  -tls-allow []string         TLS_ALLOW           allowed services
`
	sys := &deploy.System{Name: "demo", Services: []deploy.Service{
		{Name: "stock", Package: "./cmd/stock", Replicas: 1, Settings: parse(common +
			"  -store-dsn string  STORE_DSN  store (default \"sqlite:x.db\")\n  -instance-id string  INSTANCE_ID  id\n")},
		{Name: "front", Package: "./cmd/front", Replicas: 3, Public: true, Env: map[string]string{"RATE": "9"}, Args: []string{"-rate=9"},
			Settings: parse(common + "  -stock-addrs string  STOCK_GRPC_ADDRS  stock, or dns:///… (required)\n  -jwks-url string  JWKS_URL  keys (required)\n  -rate float  RATE  rate (default 1)\n")},
	}}
	opts := deploy.Options{Registry: "registry.example/acme", Tag: "v2", Namespace: "demo-prod", JWKSURL: "https://idp.example/jwks",
		TracesEndpoint: "tempo.example:4317", PostgresHost: "db.example"}
	files, err := deploy.Render(sys, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, ov := range deploy.Overlays {
		t.Run(ov, func(t *testing.T) {
			got := kustomize(t, filepath.Join(dir, "overlays", ov))
			b, err := deploy.RenderOverlay(sys, opts, ov)
			if err != nil {
				t.Fatal(err)
			}
			want, err := deploy.ReadObjects(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := same(got, want); err != nil {
				t.Error(err)
			}
			if err := deploy.Verify(got, sys); err != nil {
				t.Errorf("kustomize's %s output: %v", ov, err)
			}
		})
	}
}
