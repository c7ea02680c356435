package deploy

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// CheckProduction checks what the prod overlay promises beyond [Verify], on its objects
// as kubectl would apply them, with the options they were rendered with:
//
//   - the Namespace enforces the restricted Pod Security Standard, and every pod meets
//     it (non-root, RuntimeDefault seccomp, no privilege escalation, every capability
//     dropped, no host namespaces, ports or paths);
//   - every image is pinned by a tag that is not "latest" (or a digest), pulled
//     IfNotPresent or Always;
//   - no Secret is committed: each one is made in the cluster, by cert-manager or
//     External Secrets, and no value anywhere is a placeholder such as REPLACE_ME;
//   - every service talks mutual TLS: TLS_CERT, TLS_KEY and TLS_CA name the files of a
//     mounted Secret that a cert-manager Certificate with the service's identity
//     (spiffe://TRUST-DOMAIN/svc/SERVICE, server and client authentication) writes,
//     whose issuer exists; only the public service's HTTP listener is plain;
//   - NetworkPolicies deny everything by default, and what they allow is exactly what
//     the services' settings declare: a service's gRPC (HTTP) port takes the services
//     with a setting for its addresses, the public service's HTTP port the ingress
//     controller's namespace, every admin port (metrics, profiling) the monitoring
//     namespace and nothing else; NATS takes clients only from the services that read
//     NATS_URL; each service may reach DNS, the peers it calls, NATS and the collector;
//   - outside traffic enters only through an Ingress with TLS, whose certificate a
//     Certificate makes, to a public service's HTTP port; no Service is a LoadBalancer
//     or a NodePort;
//   - profiling (PPROF) is not switched on;
//   - NATS refuses anonymous clients and talks TLS: every service that reads NATS_URL
//     logs in as its own user (NATS_USER, with NATS_PASSWORD from a Secret made in the
//     cluster; or NATS_CREDS / NATS_NKEY from a mounted Secret) and verifies the
//     servers with NATS_TLS_CA; the servers' configuration has that user, its password
//     taken from the same Secret and its publish permissions limited, no
//     no_auth_user, and TLS on the client port and the cluster routes with the
//     certificate of a Certificate.
//
// It returns every problem found, joined.
func CheckProduction(objs []Object, sys *System, o Options) error {
	o = o.withDefaults(sys)
	c := &prodCheck{verifier: newVerifier(objs), sys: sys, o: o}
	c.namespace()
	c.workloads()
	c.secrets()
	for i := range sys.Services {
		c.mtls(&sys.Services[i])
	}
	c.networkPolicies()
	c.edge()
	c.nats()
	return errors.Join(c.errs...)
}

type prodCheck struct {
	*verifier
	sys *System
	o   Options
}

func (c *prodCheck) namespace() {
	ns, ok := c.get("Namespace", c.o.Namespace)
	if !ok {
		c.errf("no Namespace %s", c.o.Namespace)
		return
	}
	l := asMap(ns.Get("metadata", "labels"))
	if l["pod-security.kubernetes.io/enforce"] != "restricted" {
		c.errf("%s: label pod-security.kubernetes.io/enforce is %v, want restricted", ns.ID(), l["pod-security.kubernetes.io/enforce"])
	}
}

// imageRef returns the tag and digest of an image reference,
// [REGISTRY[:PORT]/]NAME[:TAG][@DIGEST].
func imageRef(img string) (tag, digest string) {
	img, digest, _ = strings.Cut(img, "@")
	last := img[strings.LastIndex(img, "/")+1:]
	_, tag, _ = strings.Cut(last, ":")
	return tag, digest
}

func (c *prodCheck) workloads() {
	for _, w := range c.order {
		if w.Kind() != "Deployment" && w.Kind() != "StatefulSet" {
			continue
		}
		pod := podSpec(w)
		for _, host := range []string{"hostNetwork", "hostPID", "hostIPC"} {
			if pod[host] == true {
				c.errf("%s: %s", w.ID(), host)
			}
		}
		for _, x := range asList(pod["volumes"]) {
			if asMap(x)["hostPath"] != nil {
				c.errf("%s: volume %v is a hostPath", w.ID(), asMap(x)["name"])
			}
		}
		psc := asMap(pod["securityContext"])
		for _, ct := range append(containers(w), listMaps(pod["initContainers"])...) {
			where := fmt.Sprintf("%s: container %v", w.ID(), ct["name"])
			sc := asMap(ct["securityContext"])
			if sc["runAsNonRoot"] != true && (psc["runAsNonRoot"] != true || sc["runAsNonRoot"] == false) {
				c.errf("%s: runAsNonRoot is not true", where)
			}
			if uid, ok := asInt(sc["runAsUser"]); ok && uid == 0 {
				c.errf("%s: runs as root", where)
			} else if uid, ok := asInt(psc["runAsUser"]); ok && uid == 0 && sc["runAsUser"] == nil {
				c.errf("%s: runs as root", where)
			}
			seccomp := asMap(sc["seccompProfile"])
			if seccomp == nil {
				seccomp = asMap(psc["seccompProfile"])
			}
			if t := seccomp["type"]; t != "RuntimeDefault" && t != "Localhost" {
				c.errf("%s: seccompProfile %v, want RuntimeDefault", where, t)
			}
			if sc["allowPrivilegeEscalation"] != false {
				c.errf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc["privileged"] == true {
				c.errf("%s: privileged", where)
			}
			caps := asMap(sc["capabilities"])
			if !slices.Contains(asList(caps["drop"]), any("ALL")) {
				c.errf("%s: capabilities do not drop ALL", where)
			}
			for _, a := range asList(caps["add"]) {
				if a != "NET_BIND_SERVICE" {
					c.errf("%s: adds capability %v", where, a)
				}
			}
			for _, p := range asList(ct["ports"]) {
				if asMap(p)["hostPort"] != nil {
					c.errf("%s: hostPort", where)
				}
			}
			img, _ := ct["image"].(string)
			if tag, digest := imageRef(img); digest == "" && (tag == "" || tag == "latest") {
				c.errf("%s: image %q is not pinned: give it a version tag (never latest) or a digest", where, img)
			}
			if p := ct["imagePullPolicy"]; p != "IfNotPresent" && p != "Always" {
				c.errf("%s: imagePullPolicy %v, want IfNotPresent (a pinned tag) or Always", where, p)
			}
			c.pprof(where, ct)
		}
	}
}

func listMaps(x any) []map[string]any {
	var out []map[string]any
	for _, y := range asList(x) {
		out = append(out, asMap(y))
	}
	return out
}

// pprof reports a container that switches profiling on.
func (c *prodCheck) pprof(where string, ct map[string]any) {
	for _, x := range asList(ct["env"]) {
		e := asMap(x)
		if e["name"] != envPprof {
			continue
		}
		val, ok := c.resolve(where, e)
		if !ok || truthy(val) {
			c.errf("%s: %s=%q: /debug/pprof must stay off in production", where, envPprof, val)
		}
	}
	for _, a := range asList(ct["args"]) {
		s, _ := a.(string)
		name, val, hasVal := strings.Cut(strings.TrimLeft(s, "-"), "=")
		if strings.HasPrefix(s, "-") && name == "pprof" && (!hasVal || truthy(val)) {
			c.errf("%s: argument %s: /debug/pprof must stay off in production", where, s)
		}
	}
}

func truthy(s string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	return err != nil || b
}

// placeholderRE matches values that stand for a secret someone was meant to fill in.
var placeholderRE = regexp.MustCompile(`(?i)replace[_-]?me|change[_-]?me|changeit|<password>|dev-password|dev-only`)

func (c *prodCheck) secrets() {
	for _, o := range c.order {
		if o.Kind() == "Secret" {
			c.errf("%s: a Secret in the manifests commits its values; make it in the cluster (External Secrets, cert-manager)", o.ID())
		}
		walkStrings(o, "", func(p, s string) {
			if placeholderRE.MatchString(s) {
				c.errf("%s: %s holds the placeholder %q", o.ID(), p, placeholderRE.FindString(s))
			}
		})
	}
}

func walkStrings(x any, p string, f func(path, s string)) {
	switch v := x.(type) {
	case string:
		f(p, v)
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkStrings(v[k], p+"."+k, f)
		}
	case Object:
		walkStrings(map[string]any(v), p, f)
	case []any:
		for i, y := range v {
			walkStrings(y, fmt.Sprintf("%s[%d]", p, i), f)
		}
	}
}

// mtls checks a service's certificate, key and CA bundle: mounted from the Secret of a
// Certificate with its identity.
func (c *prodCheck) mtls(s *Service) {
	where := "Deployment/" + s.Name
	dep, ok := c.get("Deployment", s.Name)
	if !ok {
		c.errf("service %s: no Deployment", s.Name)
		return
	}
	var ct map[string]any
	for _, x := range containers(dep) {
		if x["name"] == s.Name {
			ct = x
		}
	}
	if ct == nil {
		c.errf("%s: no container %s", where, s.Name)
		return
	}
	env := map[string]string{}
	for _, x := range asList(ct["env"]) {
		e := asMap(x)
		if val, ok := c.resolve(where, e); ok {
			env[fmt.Sprint(e["name"])] = val
		}
	}
	var secret string
	for _, f := range mtlsFiles {
		if _, ok := s.Setting(f.env); !ok {
			c.errf("%s: the service has no %s setting, so it cannot talk mTLS (svckit.Config has it)", where, f.env)
			return
		}
		file := env[f.env]
		if file == "" {
			c.errf("%s: %s is not set: no mTLS", where, f.env)
			continue
		}
		name, key := c.mountedSecret(dep, ct, file)
		if name == "" {
			c.errf("%s: %s=%s is not a file of a mounted Secret", where, f.env, file)
			continue
		}
		if key != f.key {
			c.errf("%s: %s=%s reads key %s of Secret %s, want %s", where, f.env, file, key, name, f.key)
		}
		if secret != "" && secret != name {
			c.errf("%s: the mTLS files come from Secrets %s and %s", where, secret, name)
		}
		secret = name
	}
	if secret != "" {
		c.certificate(where, s, secret)
	}
	if mode := env[envTLSHTTP]; mode == "plain" && !s.Public {
		c.errf("%s: TLS_HTTP=plain, but only the public service's HTTP listener may be plain", where)
	}
}

// mountedSecret returns the Secret and key that a file path in a container reads.
func (c *prodCheck) mountedSecret(w Object, ct map[string]any, file string) (name, key string) {
	for _, x := range asList(ct["volumeMounts"]) {
		m := asMap(x)
		dir, _ := m["mountPath"].(string)
		if m["subPath"] != nil || path.Dir(file) != path.Clean(dir) {
			continue
		}
		for _, y := range asList(podSpec(w)["volumes"]) {
			vol := asMap(y)
			if sec := asMap(vol["secret"]); vol["name"] == m["name"] && sec != nil {
				key := path.Base(file)
				for _, it := range asList(sec["items"]) {
					if asMap(it)["path"] == key {
						key = fmt.Sprint(asMap(it)["key"])
					}
				}
				return fmt.Sprint(sec["secretName"]), key
			}
		}
	}
	return "", ""
}

// certificate checks that a Certificate writes the Secret with the service's identity.
func (c *prodCheck) certificate(where string, s *Service, secret string) {
	var cert Object
	for _, o := range c.order {
		if o.Kind() == "Certificate" && o.str("spec", "secretName") == secret {
			cert = o
		}
	}
	if cert == nil {
		c.errf("%s: no Certificate writes the mTLS Secret %s", where, secret)
		return
	}
	id := "spiffe://" + c.o.TrustDomain + "/svc/" + s.Name
	if uris := asList(cert.Get("spec", "uris")); len(uris) != 1 || uris[0] != id {
		c.errf("%s: URIs %v, want the service's identity %s alone", cert.ID(), uris, id)
	}
	usages := asList(cert.Get("spec", "usages"))
	for _, u := range []string{"server auth", "client auth"} {
		if !slices.Contains(usages, any(u)) {
			c.errf("%s: usages %v lack %q", cert.ID(), usages, u)
		}
	}
}

// edge checks how outside traffic comes in: an Ingress with TLS to a public service's
// HTTP port, nothing else.
func (c *prodCheck) edge() {
	public := map[string]bool{}
	for _, s := range c.sys.Services {
		if s.Public && s.Port(envHTTPAddr) != 0 {
			public[s.Name] = false
		}
	}
	for _, o := range c.order {
		switch o.Kind() {
		case "Service":
			if t := o.str("spec", "type"); t == "LoadBalancer" || t == "NodePort" {
				c.errf("%s: type %s takes outside traffic around the Ingress, without TLS", o.ID(), t)
			}
		case "Ingress":
			hosts := map[string]bool{}
			for _, x := range asList(o.Get("spec", "tls")) {
				tls := asMap(x)
				secret := fmt.Sprint(tls["secretName"])
				var names []any
				for _, cert := range c.order {
					if cert.Kind() == "Certificate" && cert.str("spec", "secretName") == secret {
						names = asList(cert.Get("spec", "dnsNames"))
					}
				}
				if names == nil {
					c.errf("%s: no Certificate makes its TLS Secret %s", o.ID(), secret)
				}
				for _, h := range asList(tls["hosts"]) {
					hosts[fmt.Sprint(h)] = true
					if names != nil && !slices.Contains(names, h) {
						c.errf("%s: the certificate in %s does not name %v", o.ID(), secret, h)
					}
				}
			}
			for _, x := range asList(o.Get("spec", "rules")) {
				r := asMap(x)
				host, _ := r["host"].(string)
				if !hosts[host] {
					c.errf("%s: host %q is served without TLS", o.ID(), host)
				}
				for _, y := range asList(asMap(r["http"])["paths"]) {
					b := asMap(asMap(asMap(y)["backend"])["service"])
					name := fmt.Sprint(b["name"])
					if _, ok := public[name]; !ok {
						c.errf("%s: routes outside traffic to %s, which is not a public service", o.ID(), name)
						continue
					}
					if asMap(b["port"])["name"] != "http" {
						c.errf("%s: routes outside traffic to port %v of %s, want its http port", o.ID(), b["port"], name)
					}
					public[name] = true
				}
			}
			if o.Get("spec", "defaultBackend") != nil {
				c.errf("%s: a default backend takes every host, without TLS", o.ID())
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(public)) {
		if !public[name] {
			c.errf("public service %s: no Ingress routes to it over TLS", name)
		}
	}
}
