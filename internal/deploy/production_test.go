package deploy

import (
	"strings"
	"testing"
)

// TestCheckProduction breaks the rendered prod overlay one way at a time and checks
// that CheckProduction names each break.
func TestCheckProduction(t *testing.T) {
	sys := testSystem(t)
	if err := CheckProduction(renderObjects(t, sys, Prod), sys, Options{}); err != nil {
		t.Fatalf("the rendered prod overlay: %v", err)
	}
	policy := func(o []Object, name string) map[string]any { return asMap(find(o, "NetworkPolicy/"+name)["spec"]) }
	tests := []struct {
		name   string
		breakf func(o []Object) []Object
		want   string
	}{
		{"Pod Security label", func(o []Object) []Object {
			delete(asMap(find(o, "Namespace/demo").Get("metadata", "labels")), "pod-security.kubernetes.io/enforce")
			return o
		}, "label pod-security.kubernetes.io/enforce is <nil>, want restricted"},
		{"root", func(o []Object) []Object {
			asMap(podSpec(find(o, "Deployment/stock"))["securityContext"])["runAsNonRoot"] = false
			return o
		}, "Deployment/stock: container stock: runAsNonRoot is not true"},
		{"privilege escalation", func(o []Object) []Object {
			asMap(container(o, "front")["securityContext"])["allowPrivilegeEscalation"] = true
			return o
		}, "container front: allowPrivilegeEscalation is not false"},
		{"capabilities", func(o []Object) []Object {
			asMap(container(o, "front")["securityContext"])["capabilities"] = map[string]any{"add": []any{"NET_ADMIN"}}
			return o
		}, "capabilities do not drop ALL"},
		{"latest", func(o []Object) []Object { container(o, "stock")["image"] = "demo-stock:latest"; return o }, `image "demo-stock:latest" is not pinned`},
		{"no tag", func(o []Object) []Object {
			container(o, "stock")["image"] = "registry.example:5000/demo-stock"
			return o
		}, "is not pinned"},
		{"digest", func(o []Object) []Object {
			container(o, "stock")["image"] = "registry.example:5000/demo-stock@sha256:" + strings.Repeat("a", 64)
			container(o, "stock")["imagePullPolicy"] = "Never"
			return o
		}, "imagePullPolicy Never"}, // and nothing about the pinned image
		{"pull policy", func(o []Object) []Object { container(o, "stock")["imagePullPolicy"] = "Never"; return o }, "imagePullPolicy Never"},
		{"committed Secret", func(o []Object) []Object {
			return append(o, Object{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "stock-store"},
				"stringData": map[string]any{"STORE_DSN": "postgres://stock:REPLACE_ME@postgres:5432/stock"}})
		}, "Secret/stock-store: a Secret in the manifests commits its values"},
		{"placeholder", func(o []Object) []Object {
			asMap(find(o, "ConfigMap/demo-env")["data"])["JWKS_URL"] = "https://CHANGE_ME/jwks"
			return o
		}, `ConfigMap/demo-env: .data.JWKS_URL holds the placeholder "CHANGE_ME"`},
		{"pprof", func(o []Object) []Object {
			c := container(o, "stock")
			c["env"] = append(asList(c["env"]), map[string]any{"name": "PPROF", "value": "true"})
			return o
		}, `PPROF="true": /debug/pprof must stay off`},
		{"pprof flag", func(o []Object) []Object { container(o, "stock")["args"] = []any{"-pprof"}; return o }, "argument -pprof"},
		{"no mTLS", func(o []Object) []Object {
			c := container(o, "stock")
			var env []any
			for _, e := range asList(c["env"]) {
				if asMap(e)["name"] != "TLS_CERT" {
					env = append(env, e)
				}
			}
			c["env"] = env
			return o
		}, "Deployment/stock: TLS_CERT is not set: no mTLS"},
		{"mTLS file not mounted", func(o []Object) []Object { envEntry(o, "stock", "TLS_KEY")["value"] = "/tmp/tls.key"; return o },
			"TLS_KEY=/tmp/tls.key is not a file of a mounted Secret"},
		{"mTLS key swapped", func(o []Object) []Object { envEntry(o, "stock", "TLS_CA")["value"] = mtlsDir + "/tls.crt"; return o },
			"TLS_CA=/etc/svckit/mtls/tls.crt reads key tls.crt of Secret stock-mtls, want ca.crt"},
		{"identity", func(o []Object) []Object {
			asMap(find(o, "Certificate/stock-mtls")["spec"])["uris"] = []any{"spiffe://svckit.local/svc/front"}
			return o
		}, "want the service's identity spiffe://svckit.local/svc/stock alone"},
		{"client auth", func(o []Object) []Object {
			asMap(find(o, "Certificate/stock-mtls")["spec"])["usages"] = []any{"server auth"}
			return o
		}, `lack "client auth"`},
		{"no Certificate", func(o []Object) []Object {
			var out []Object
			for _, x := range o {
				if x.ID() != "Certificate/stock-mtls" {
					out = append(out, x)
				}
			}
			return out
		}, "no Certificate writes the mTLS Secret stock-mtls"},
		{"plain internal HTTP", func(o []Object) []Object {
			c := container(o, "stock")
			c["env"] = append(asList(c["env"]), map[string]any{"name": "TLS_HTTP", "value": "plain"})
			return o
		}, "Deployment/stock: TLS_HTTP=plain"},
		{"no default deny", func(o []Object) []Object {
			policy(o, "default-deny")["policyTypes"] = []any{"Ingress"}
			return o
		}, "no default-deny NetworkPolicy"},
		{"gRPC from anywhere", func(o []Object) []Object {
			rules := asList(policy(o, "stock")["ingress"])
			delete(asMap(rules[0]), "from")
			return o
		}, "stock's grpc port (port 8081) admits [anywhere namespace:ingress-nginx namespace:monitoring pod:front"},
		{"gRPC from every pod of the namespace", func(o []Object) []Object {
			asMap(asList(asMap(asList(policy(o, "stock")["ingress"])[0])["from"])[0])["podSelector"] = map[string]any{}
			return o
		}, "stock's grpc port (port 8081) admits [pod:front pod:nats pod:otel-collector pod:stock], want [pod:front]"},
		{"admin port from every namespace", func(o []Object) []Object {
			rules := asList(policy(o, "front")["ingress"])
			asMap(asList(asMap(rules[len(rules)-1])["from"])[0])["namespaceSelector"] = map[string]any{}
			return o
		}, "front's admin port (port 9090) admits [anywhere namespace:ingress-nginx namespace:monitoring pod:front"},
		{"public port closed", func(o []Object) []Object {
			rules := asList(policy(o, "front")["ingress"])
			policy(o, "front")["ingress"] = rules[1:]
			return o
		}, "front's http port (port 8080) admits [], want [namespace:ingress-nginx]"},
		{"egress to peer", func(o []Object) []Object {
			policy(o, "front")["egress"] = asList(policy(o, "front")["egress"])[1:]
			return o
		}, "front cannot reach stock's grpc port (port 8081/TCP)"},
		{"no DNS", func(o []Object) []Object {
			asMap(asList(policy(o, "allow-dns")["egress"])[0])["ports"] = []any{map[string]any{"protocol": "TCP", "port": 53}}
			return o
		}, "stock cannot reach DNS (port 53/UDP)"},
		{"NATS from anyone", func(o []Object) []Object {
			delete(asMap(asList(policy(o, "nats")["ingress"])[0]), "from")
			return o
		}, "NATS's client port (port 4222) admits [anywhere"},
		{"LoadBalancer", func(o []Object) []Object {
			asMap(find(o, "Service/front")["spec"])["type"] = "LoadBalancer"
			return o
		}, "Service/front: type LoadBalancer"},
		{"Ingress without TLS", func(o []Object) []Object {
			delete(asMap(find(o, "Ingress/front-public")["spec"]), "tls")
			return o
		}, `Ingress/front-public: host "demo.example.com" is served without TLS`},
		{"Ingress to an internal service", func(o []Object) []Object {
			rule := asMap(asList(find(o, "Ingress/front-public").Get("spec", "rules"))[0])
			path := asMap(asList(asMap(rule["http"])["paths"])[0])
			asMap(asMap(path["backend"])["service"])["name"] = "stock"
			return o
		}, "routes outside traffic to stock, which is not a public service"},
		{"NATS password in the clear", func(o []Object) []Object {
			e := envEntry(o, "stock", "NATS_PASSWORD")
			delete(e, "valueFrom")
			e["value"] = "hunter2"
			return o
		}, "Deployment/stock: NATS_PASSWORD does not come from a Secret"},
		{"no NATS user", func(o []Object) []Object { dropEnv(o, "stock", "NATS_USER"); return o },
			"Deployment/stock: NATS_USER is not set"},
		{"no NATS TLS CA", func(o []Object) []Object { dropEnv(o, "stock", "NATS_TLS_CA"); return o },
			"Deployment/stock: NATS_TLS_CA is not set"},
		{"NATS TLS CA not mounted", func(o []Object) []Object { envEntry(o, "stock", "NATS_TLS_CA")["value"] = "/tmp/ca.crt"; return o },
			"NATS_TLS_CA=/tmp/ca.crt is not a file of a mounted Secret"},
		{"anonymous NATS", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string {
				i, j := strings.Index(c, "authorization {"), strings.Index(c, "  ]\n}\n")
				return c[:i] + c[j+len("  ]\n}\n"):]
			})
			return o
		}, "no authorization block: NATS takes anonymous clients"},
		{"no_auth_user", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string { return c + "no_auth_user: stock\n" })
			return o
		}, "no_auth_user lets anonymous clients in"},
		{"NATS password written", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string { return strings.Replace(c, "$NATS_PASSWORD_STOCK", `"hunter2"`, 1) })
			return o
		}, "user stock: the password is written in the configuration"},
		{"NATS password of another Secret", func(o []Object) []Object {
			for _, x := range asList(containers(find(o, "StatefulSet/nats"))[0]["env"]) {
				if asMap(x)["name"] == "NATS_PASSWORD_STOCK_RAW" {
					asMap(asMap(asMap(x)["valueFrom"])["secretKeyRef"])["name"] = "front-nats"
				}
			}
			return o
		}, "user stock: password $NATS_PASSWORD_STOCK is not the value of Secret stock-nats key NATS_PASSWORD"},
		{"publish anything", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string { return strings.Replace(c, `"stock.>", "*.stock.>"]`, `">"]`, 1) })
			return o
		}, "user stock may publish on every subject"},
		{"no user for a service", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string { return strings.Replace(c, `{user: "stock"`, `{user: "stick"`, 1) })
			return o
		}, "ConfigMap/nats-config: no user stock for stock"},
		{"NATS client port without TLS", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string { return strings.Replace(c, "\ntls {", "\nnot_tls {", 1) })
			return o
		}, "no TLS on the client port"},
		{"NATS routes without TLS", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string { return strings.Replace(c, "  tls {", "  not_tls {", 1) })
			return o
		}, "no TLS on the routes (cluster)"},
		{"NATS certificate not mounted", func(o []Object) []Object {
			editNATSConf(t, o, func(c string) string { return strings.Replace(c, natsTLSDir+"/tls.key", "/tmp/tls.key", 1) })
			return o
		}, `TLS on the client port: key_file "/tmp/tls.key" is not a file of a mounted Secret`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.breakf(renderObjects(t, sys, Prod))
			err := CheckProduction(objs, sys, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckProduction = %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}

// TestRenderRefusesProduction checks that the renderer refuses options and svckit.yaml
// settings that would make the prod overlay unfit, rather than write it.
func TestRenderRefusesProduction(t *testing.T) {
	tests := []struct {
		name string
		edit func(*System, *Options)
		want string
	}{
		{"latest", func(_ *System, o *Options) { o.Tag = "latest" }, "-tag latest"},
		{"bad tag", func(_ *System, o *Options) { o.Tag = "v1 beta" }, "is not an image tag"},
		{"issuer kind", func(_ *System, o *Options) { o.Issuer = "Secret/ca" }, "-issuer"},
		{"secret store", func(_ *System, o *Options) { o.SecretStore = "vault" }, "-secret-store"},
		{"public host", func(_ *System, o *Options) { o.PublicHost = "localhost" }, "-public-host"},
		{"trust domain", func(_ *System, o *Options) { o.TrustDomain = "Shop Domain" }, "-trust-domain"},
		{"pprof on", func(s *System, _ *Options) {
			f := s.Service("front")
			f.Settings = append(f.Settings, Setting{Name: "pprof", Env: "PPROF", Type: "bool", Default: "false"})
			f.Env["PPROF"] = "true"
		}, "/debug/pprof must stay off in production"},
		{"no mTLS settings", func(s *System, _ *Options) {
			st := s.Service("stock")
			var keep []Setting
			for _, x := range st.Settings {
				if !strings.HasPrefix(x.Env, "TLS_") {
					keep = append(keep, x)
				}
			}
			st.Settings = keep
		}, "Deployment/stock: the service has no TLS_CERT setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := testSystem(t)
			var o Options
			tt.edit(sys, &o)
			if _, err := Render(sys, o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render = %v, want an error containing %q", err, tt.want)
			}
			if _, err := RenderOverlay(sys, o, Prod); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RenderOverlay(prod) = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestMTLSEnv checks what turns on each service's mTLS in the prod overlay, and that
// the dev overlay leaves it off.
func TestMTLSEnv(t *testing.T) {
	sys := testSystem(t)
	prod := renderObjects(t, sys, Prod)
	for name, want := range map[string]map[string]any{
		"stock": {"TLS_CERT": mtlsDir + "/tls.crt", "TLS_KEY": mtlsDir + "/tls.key", "TLS_CA": mtlsDir + "/ca.crt", "TLS_ALLOW": "front", "TLS_HTTP": nil},
		"front": {"TLS_CERT": mtlsDir + "/tls.crt", "TLS_HTTP": "plain", "TLS_ALLOW": nil},
	} {
		for env, v := range want {
			e := envEntry(prod, name, env)
			if (v == nil) != (e == nil) || (e != nil && e["value"] != v) {
				t.Errorf("prod %s: %s = %v, want %v", name, env, e, v)
			}
		}
	}
	dev := renderObjects(t, sys, Dev)
	if e := envEntry(dev, "stock", "TLS_CERT"); e != nil {
		t.Errorf("dev stock: TLS_CERT = %v; the dev overlay has no certificates", e)
	}
	if ns := find(dev, "Namespace/demo"); asMap(ns.Get("metadata", "labels"))["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("dev Namespace labels %v, want Pod Security restricted", ns.Get("metadata", "labels"))
	}
}

// dropEnv removes an environment variable from a Deployment's container.
func dropEnv(objs []Object, dep, name string) {
	c := container(objs, dep)
	var env []any
	for _, e := range asList(c["env"]) {
		if asMap(e)["name"] != name {
			env = append(env, e)
		}
	}
	c["env"] = env
}

// editNATSConf changes the NATS configuration file of rendered objects.
func editNATSConf(t *testing.T, objs []Object, edit func(string) string) {
	t.Helper()
	data := asMap(find(objs, "ConfigMap/nats-config")["data"])
	text, _ := data["nats.conf"].(string)
	changed := edit(text)
	if changed == text {
		t.Fatal("the edit left nats.conf as it was")
	}
	data["nats.conf"] = changed
}
