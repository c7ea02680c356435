package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// usageText is -help output as package config prints it, for systems in tests that are
// not built.
const (
	commonUsage = `  FLAG                        ENVIRONMENT         DESCRIPTION
  -config file                CONFIG_FILE         configuration file (.yaml, .yml or .json)
  -http-addr string           HTTP_ADDR           address of the HTTP listener (empty: no HTTP) (default ":8080")
  -grpc-addr string           GRPC_ADDR           address of the gRPC listener (empty: no gRPC) (default ":8081")
  -admin-addr string          ADMIN_ADDR          address of the admin listener (default ":9090")
  -log-level level            LOG_LEVEL           lowest level logged (default info)
  -shutdown-timeout duration  SHUTDOWN_TIMEOUT    how long in-flight requests may take to finish at shutdown (default 15s)
  -drain-delay duration       DRAIN_DELAY         time between reporting not-ready and closing listeners (default 0s)
  -nats-url string            NATS_URL            NATS server(s)
  -nats-creds string          NATS_CREDS          NATS credentials file
  -nats-user string           NATS_USER           NATS user name (with NATS_PASSWORD)
  -nats-password string       NATS_PASSWORD       NATS password of NATS_USER
  -nats-tls-ca string         NATS_TLS_CA         CA bundle (PEM) that verifies the NATS servers
  -tls-cert string            TLS_CERT            this service's certificate (PEM) for mTLS
  -tls-key string             TLS_KEY             the private key of -tls-cert (PEM)
  -tls-ca string              TLS_CA              the CA bundle (PEM)
  -tls-http string            TLS_HTTP            the HTTP listener under mTLS: mtls, or plain (default "mtls")
  -tls-allow []string         TLS_ALLOW           the services whose certificates may connect under mTLS
`
	storeUsage = `  -store-dsn string           STORE_DSN           this service's own store (default "sqlite:shop.db")
  -instance-id string         INSTANCE_ID         this process's name among the service's replicas
`
	frontUsage = `  -stock-addrs string         STOCK_GRPC_ADDRS    stock gRPC addresses, comma-separated, or dns:///… (required)
  -jwks-url string            JWKS_URL            where the token signing keys are published (JWKS) (required)
  -rate float                 RATE                calls per second allowed per caller (default 200)
`
)

// testSystem is a two-service system: front (public, calls stock, validates tokens) and
// stock (its own store).
func testSystem(t testing.TB) *System {
	t.Helper()
	parse := func(text string) []Setting {
		s, err := ParseUsage(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return &System{Name: "demo", Services: []Service{
		{Name: "stock", Package: "./cmd/stock", Replicas: 1, Settings: parse(commonUsage + storeUsage)},
		{Name: "front", Package: "./cmd/front", Replicas: 2, Public: true, Env: map[string]string{"RATE": "50"},
			Settings: parse(commonUsage + frontUsage)},
	}}
}

func renderObjects(t *testing.T, sys *System, overlay string) []Object {
	t.Helper()
	b, err := RenderOverlay(sys, Options{}, overlay)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ReadObjects(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []Object, id string) Object {
	for _, o := range objs {
		if o.ID() == id {
			return o
		}
	}
	return nil
}

func container(objs []Object, dep string) map[string]any {
	return containers(find(objs, "Deployment/"+dep))[0]
}

func envEntry(objs []Object, dep, name string) map[string]any {
	for _, x := range asList(container(objs, dep)["env"]) {
		if e := asMap(x); e["name"] == name {
			return e
		}
	}
	return nil
}

// TestVerifyCatches breaks rendered manifests one way at a time and checks that Verify
// names each break.
func TestVerifyCatches(t *testing.T) {
	tests := []struct {
		name   string // "dev …": breaks the dev overlay, else the prod one
		breakf func(objs []Object)
		want   string
	}{
		{"readiness path", func(o []Object) {
			asMap(asMap(container(o, "stock")["readinessProbe"])["httpGet"])["path"] = "/ready"
		}, "readinessProbe GETs /ready, want /readyz"},
		{"probe port", func(o []Object) {
			asMap(asMap(container(o, "stock")["livenessProbe"])["httpGet"])["port"] = 8080
		}, "livenessProbe on port 8080, want the admin port 9090"},
		{"admin container port", func(o []Object) {
			asMap(asList(container(o, "stock")["ports"])[2])["containerPort"] = 9091
		}, "container port admin is 9091, but ADMIN_ADDR=:9090"},
		{"env not a setting", func(o []Object) { envEntry(o, "stock", "LOG_LEVEL")["name"] = "LOGLEVEL" }, "env LOGLEVEL is not a setting of stock"},
		{"required setting unset", func(o []Object) { envEntry(o, "front", "JWKS_URL")["name"] = "NATS_URL" }, "required setting -jwks-url (JWKS_URL) is not set"},
		{"ConfigMap key missing", func(o []Object) { delete(asMap(find(o, "ConfigMap/demo-env")["data"]), "NATS_URL") }, `ConfigMap "demo-env" has no key "NATS_URL"`},
		{"Secret missing", func(o []Object) {
			asMap(asMap(envEntry(o, "stock", "STORE_DSN")["valueFrom"])["secretKeyRef"])["name"] = "nope"
		}, `Secret "nope" has no key "STORE_DSN"`},
		{"dev SQLite in a pod", func(o []Object) {
			asMap(find(o, "Secret/stock-store")["stringData"])["STORE_DSN"] = "sqlite:/tmp/x.db"
		}, "STORE_DSN is not a PostgreSQL DSN"},
		{"ExternalSecret key", func(o []Object) {
			asMap(asList(find(o, "ExternalSecret/stock-store").Get("spec", "data"))[0])["secretKey"] = "DSN"
		}, `Secret "stock-store" has no key "STORE_DSN"`},
		{"mTLS Secret", func(o []Object) {
			asMap(find(o, "Certificate/stock-mtls")["spec"])["secretName"] = "other"
		}, "mounts missing Secret stock-mtls"},
		{"Certificate issuer", func(o []Object) {
			asMap(find(o, "Certificate/stock-mtls").Get("spec", "issuerRef"))["name"] = "nope"
		}, "issuerRef names Issuer nope"},
		{"Ingress backend port", func(o []Object) {
			rule := asMap(asList(find(o, "Ingress/front-public").Get("spec", "rules"))[0])
			path := asMap(asList(asMap(rule["http"])["paths"])[0])
			asMap(asMap(asMap(path["backend"])["service"])["port"])["name"] = "grcp"
		}, "backend port map[name:grcp] is not a port of Service/front"},
		{"Ingress TLS Secret", func(o []Object) {
			asMap(asList(find(o, "Ingress/front-public").Get("spec", "tls"))[0])["secretName"] = "nope"
		}, "TLS Secret nope is neither defined nor made by a Certificate"},
		{"peer port", func(o []Object) {
			asMap(find(o, "ConfigMap/demo-env")["data"])["STOCK_GRPC_ADDRS"] = "dns:///stock-headless:9999"
		}, "Service stock-headless has no port 9999"},
		{"peer host", func(o []Object) {
			asMap(find(o, "ConfigMap/demo-env")["data"])["STOCK_GRPC_ADDRS"] = "dns:///stok-headless:8081"
		}, "stok-headless names no Service"},
		{"NATS URL", func(o []Object) { asMap(find(o, "ConfigMap/demo-env")["data"])["NATS_URL"] = "nats://nats:4333" }, "Service nats has no port 4333"},
		{"no drain delay", func(o []Object) { asMap(find(o, "ConfigMap/demo-env")["data"])["DRAIN_DELAY"] = "0s" }, `DRAIN_DELAY is "0s"`},
		{"short grace period", func(o []Object) { podSpec(find(o, "Deployment/stock"))["terminationGracePeriodSeconds"] = 20 }, "terminationGracePeriodSeconds 20 does not exceed"},
		{"scrape port", func(o []Object) {
			asMap(find(o, "Deployment/stock").Get("spec", "template", "metadata", "annotations"))["prometheus.io/port"] = "8080"
		}, "Prometheus annotations"},
		{"Service selector", func(o []Object) {
			asMap(find(o, "Service/stock").Get("spec", "selector"))["app.kubernetes.io/name"] = "stok"
		}, "Service/stock: selector"},
		{"Service target port", func(o []Object) {
			asMap(asList(find(o, "Service/stock-headless").Get("spec", "ports"))[0])["targetPort"] = "grcp"
		}, "targets grcp"},
		{"PDB selector", func(o []Object) {
			asMap(find(o, "PodDisruptionBudget/front").Get("spec", "selector", "matchLabels"))["app.kubernetes.io/part-of"] = "x"
		}, "PodDisruptionBudget/front: selects no workload"},
		{"HPA target", func(o []Object) {
			asMap(find(o, "HorizontalPodAutoscaler/front").Get("spec", "scaleTargetRef"))["name"] = "frnt"
		}, "scales Deployment/frnt"},
		{"replicas under HPA", func(o []Object) { asMap(find(o, "Deployment/front")["spec"])["replicas"] = 2 }, "sets replicas"},
		{"mounted ConfigMap", func(o []Object) {
			for _, v := range asList(podSpec(find(o, "StatefulSet/nats"))["volumes"]) {
				if cm := asMap(asMap(v)["configMap"]); cm != nil {
					cm["name"] = "gone"
				}
			}
		}, "mounts missing ConfigMap gone"},
		{"dev NATS password Secret", func(o []Object) {
			for _, x := range asList(containers(find(o, "StatefulSet/nats"))[0]["env"]) {
				if ref := asMap(asMap(asMap(x)["valueFrom"])["secretKeyRef"]); ref != nil && ref["name"] == "stock-nats" {
					ref["name"] = "stock-nast"
				}
			}
		}, `StatefulSet/nats: env NATS_PASSWORD_STOCK_RAW: Secret "stock-nast" has no key "NATS_PASSWORD"`},
		{"prod NATS password ExternalSecret", func(o []Object) {
			for _, x := range asList(containers(find(o, "StatefulSet/nats"))[0]["env"]) {
				if ref := asMap(asMap(asMap(x)["valueFrom"])["secretKeyRef"]); ref != nil && ref["name"] == "stock-nats" {
					ref["key"] = "PASSWORD"
				}
			}
		}, `StatefulSet/nats: env NATS_PASSWORD_STOCK_RAW: Secret "stock-nats" has no key "PASSWORD"`},
	}
	sys := testSystem(t)
	if err := Verify(renderObjects(t, sys, Prod), sys); err != nil {
		t.Fatalf("the unbroken manifests: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ov := Prod
			if strings.HasPrefix(tt.name, "dev ") {
				ov = Dev
			}
			objs := renderObjects(t, sys, ov)
			tt.breakf(objs)
			err := Verify(objs, sys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Verify = %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}

// TestBuildTree renders a tree, checks that building each overlay gives RenderOverlay's
// objects, then breaks the tree's kustomizations.
func TestBuildTree(t *testing.T) {
	sys := testSystem(t)
	files, err := Render(sys, Options{Registry: "registry.example/acme", Tag: "v1.2.3", Namespace: "demo-ns"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ov := range Overlays {
		dir := t.TempDir()
		if err := files.Write(dir); err != nil {
			t.Fatal(err)
		}
		got, err := BuildTree(filepath.Join(dir, "overlays", ov))
		if err != nil {
			t.Fatal(err)
		}
		b, err := RenderOverlay(sys, Options{Registry: "registry.example/acme", Tag: "v1.2.3", Namespace: "demo-ns"}, ov)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ReadObjects(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := sameObjects(got, want); err != nil {
			t.Errorf("%s: %v", ov, err)
		}
		if err := Verify(got, sys); err != nil {
			t.Errorf("%s: %v", ov, err)
		}
		if img := container(got, "front")["image"]; img != "registry.example/acme/demo-front:v1.2.3" {
			t.Errorf("%s: front's image %v", ov, img)
		}
	}

	breaks := []struct {
		name string
		file string
		edit func(string) string
		want string
	}{
		{"missing resource", "base/kustomization.yaml", func(s string) string { return s + "  - gone.yaml\n" }, "resource gone.yaml"},
		{"patch target", "overlays/prod/patches/stock-deployment.yaml", func(s string) string { return strings.Replace(s, "name: stock", "name: stok", 1) }, "targets Deployment/stok"},
		{"missing patch", "overlays/prod/kustomization.yaml", func(s string) string {
			return strings.Replace(s, "patches:\n", "patches:\n  - path: patches/gone.yaml\n", 1)
		}, "patch patches/gone.yaml"},
		{"unused image", "overlays/prod/kustomization.yaml", func(s string) string { return strings.Replace(s, "name: demo-stock", "name: demo-stok", 1) }, "image demo-stok is used by no container"},
	}
	for _, tt := range breaks {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := files.Write(dir); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, filepath.FromSlash(tt.file))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(tt.edit(string(b))), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = BuildTree(filepath.Join(dir, "overlays", Prod))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildTree = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestFilesCheck checks that Check names changed, missing and leftover rendered files
// and leaves hand-written ones alone.
func TestFilesCheck(t *testing.T) {
	files, err := Render(testSystem(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := files.Write(dir); err != nil {
		t.Fatal(err)
	}
	if stale, err := files.Check(dir); err != nil || len(stale) > 0 {
		t.Fatalf("Check after Write = %v, %v", stale, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "base", "stock.yaml"), []byte(header+"changed\n"), 0o644))
	must(os.Remove(filepath.Join(dir, "base", "front.yaml")))
	must(os.WriteFile(filepath.Join(dir, "base", "old.yaml"), []byte(header), 0o644))
	must(os.WriteFile(filepath.Join(dir, "base", "mine.yaml"), []byte("# hand-written\n"), 0o644))
	stale, err := files.Check(dir)
	must(err)
	if want := []string{"base/front.yaml", "base/old.yaml", "base/stock.yaml"}; strings.Join(stale, " ") != strings.Join(want, " ") {
		t.Errorf("Check = %v, want %v", stale, want)
	}
	must(files.Write(dir))
	if stale, err := files.Check(dir); err != nil || len(stale) > 0 {
		t.Errorf("Check after a second Write = %v, %v", stale, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "base", "mine.yaml")); err != nil {
		t.Errorf("Write removed a hand-written file: %v", err)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*System)
		want string
	}{
		{"unknown env", func(s *System) { s.Services[1].Env["RATEE"] = "1" }, "env RATEE in svckit.yaml is not one of its settings"},
		{"no settings", func(s *System) { s.Services[0].Settings = nil }, "no settings"},
		{"reserved name", func(s *System) { s.Services[0].Name = "nats" }, "clashes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := testSystem(t)
			tt.edit(sys)
			if _, err := Render(sys, Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render = %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := RenderOverlay(testSystem(t), Options{}, "staging"); err == nil {
		t.Error("RenderOverlay(staging) succeeded")
	}
}
