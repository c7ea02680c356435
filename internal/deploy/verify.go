package deploy

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Verify checks rendered manifests (one overlay's objects, as kubectl would apply them)
// against the services' real configuration and against themselves:
//
//   - every service has a Deployment whose container ports are the ports of its
//     HTTP_ADDR, GRPC_ADDR and ADMIN_ADDR settings;
//   - liveness and startup probes GET [LivenessPath], readiness [ReadinessPath], on the
//     admin port, and the Prometheus annotations name the admin port and [MetricsPath];
//   - every environment variable is a setting of the service (or in [PlatformEnv]),
//     every required setting is set, and every configMapKeyRef, secretKeyRef and mounted
//     ConfigMap or Secret exists with its key;
//   - addresses in the environment (peers' *_ADDRS, NATS_URL, the OTLP endpoint, the
//     store DSN's host) name a Service and one of its ports;
//   - the grace period exceeds the shutdown timeout plus the drain delay, which is set;
//   - Services, PodDisruptionBudgets and HorizontalPodAutoscalers select or target
//     workloads that exist, through ports those workloads have.
//
// It returns every problem found, joined.
func Verify(objs []Object, sys *System) error {
	v := newVerifier(objs)
	for _, o := range objs {
		if _, dup := v.byID[o.ID()]; dup && v.seen[o.ID()] {
			v.errf("%s: defined twice", o.ID())
		}
		v.seen[o.ID()] = true
	}
	for i := range sys.Services {
		v.service(&sys.Services[i])
	}
	v.selectors()
	return errors.Join(v.errs...)
}

type verifier struct {
	byID  map[string]Object
	order []Object
	errs  []error
	seen  map[string]bool
	// made lists the Secrets that controllers make in the cluster from objects of the
	// manifests — cert-manager from a Certificate, External Secrets from an
	// ExternalSecret — by name: their keys, or nil when any key may be there.
	made map[string]map[string]bool
}

func newVerifier(objs []Object) *verifier {
	v := &verifier{byID: map[string]Object{}, seen: map[string]bool{}}
	for _, o := range objs {
		v.byID[o.ID()] = o
		v.order = append(v.order, o)
	}
	v.made = madeSecrets(objs)
	return v
}

// madeSecrets returns the Secrets that cert-manager and External Secrets make from
// objs, by name, with their keys (nil: any key).
func madeSecrets(objs []Object) map[string]map[string]bool {
	made := map[string]map[string]bool{}
	for _, o := range objs {
		switch o.Kind() {
		case "Certificate":
			if name := o.str("spec", "secretName"); name != "" {
				made[name] = map[string]bool{"tls.crt": true, "tls.key": true, "ca.crt": true}
			}
		case "ExternalSecret":
			name := o.str("spec", "target", "name")
			if name == "" {
				name = o.Name()
			}
			keys := map[string]bool{}
			for _, x := range asList(o.Get("spec", "data")) {
				if k, _ := asMap(x)["secretKey"].(string); k != "" {
					keys[k] = true
				}
			}
			if o.Get("spec", "dataFrom") != nil {
				keys = nil
			}
			made[name] = keys
		}
	}
	return made
}

// madeValue stands for the value of a key of a Secret made in the cluster: set, but
// not known from the manifests.
const madeValue = "\x00(made in the cluster)"

func (v *verifier) errf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf(format, args...))
}

func (v *verifier) get(kind, name string) (Object, bool) {
	o, ok := v.byID[kind+"/"+name]
	return o, ok
}

func asMap(x any) map[string]any { m, _ := x.(map[string]any); return m }

func asList(x any) []any { l, _ := x.([]any); return l }

func asInt(x any) (int, bool) {
	switch n := x.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), n == float64(int(n))
	}
	return 0, false
}

func podSpec(o Object) map[string]any { return asMap(o.Get("spec", "template", "spec")) }

func containers(o Object) []map[string]any {
	var out []map[string]any
	for _, c := range asList(podSpec(o)["containers"]) {
		out = append(out, asMap(c))
	}
	return out
}

// keyValue returns the value of key in a ConfigMap's data or a Secret's data
// (base64) or stringData.
func (v *verifier) keyValue(kind, name, key string) (string, bool) {
	o, ok := v.get(kind, name)
	if !ok {
		if v.made == nil {
			// A verifier made without newVerifier, from byID alone.
			var objs []Object
			for _, id := range slices.Sorted(maps.Keys(v.byID)) {
				objs = append(objs, v.byID[id])
			}
			v.made = madeSecrets(objs)
		}
		if keys, made := v.made[name]; made && kind == "Secret" && (keys == nil || keys[key]) {
			return madeValue, true
		}
		return "", false
	}
	if s, ok := asMap(o["stringData"])[key]; ok {
		str, _ := s.(string)
		return str, true
	}
	if s, ok := asMap(o["data"])[key]; ok {
		str, _ := s.(string)
		if kind == "Secret" {
			return "", true // base64; the value is not needed for the checks that read it
		}
		return str, true
	}
	return "", false
}

// resolve returns the value an env entry gives its variable, if the manifests hold it.
func (v *verifier) resolve(where string, e map[string]any) (string, bool) {
	if val, ok := e["value"]; ok {
		s, _ := val.(string)
		return s, true
	}
	from := asMap(e["valueFrom"])
	for kind, ref := range map[string]string{"ConfigMap": "configMapKeyRef", "Secret": "secretKeyRef"} {
		r := asMap(from[ref])
		if r == nil {
			continue
		}
		name, _ := r["name"].(string)
		key, _ := r["key"].(string)
		val, ok := v.keyValue(kind, name, key)
		if !ok && r["optional"] != true {
			v.errf("%s: env %v: %s %q has no key %q", where, e["name"], kind, name, key)
		}
		return val, ok && val != ""
	}
	if from["fieldRef"] != nil || from["resourceFieldRef"] != nil {
		return "", false
	}
	v.errf("%s: env %v has neither value nor a known valueFrom", where, e["name"])
	return "", false
}

func (v *verifier) service(s *Service) {
	dep, ok := v.get("Deployment", s.Name)
	if !ok {
		v.errf("service %s: no Deployment %s", s.Name, s.Name)
		return
	}
	var c map[string]any
	for _, cc := range containers(dep) {
		if cc["name"] == s.Name {
			c = cc
		}
	}
	where := "Deployment/" + s.Name
	if c == nil {
		v.errf("%s: no container named %s", where, s.Name)
		return
	}

	// Environment: names, references, values.
	values := map[string]string{}
	set := map[string]bool{}
	for _, x := range asList(c["env"]) {
		e := asMap(x)
		name, _ := e["name"].(string)
		if set[name] {
			v.errf("%s: env %s set twice", where, name)
		}
		set[name] = true
		if _, ok := s.Setting(name); !ok && !isPlatformEnv(name) {
			v.errf("%s: env %s is not a setting of %s (its -help does not list it)", where, name, s.Name)
		}
		if val, ok := v.resolve(where, e); ok {
			values[name] = val
		}
	}
	args := map[string]bool{}
	for _, a := range asList(c["args"]) {
		if str, ok := a.(string); ok && strings.HasPrefix(str, "-") {
			args[strings.SplitN(strings.TrimLeft(str, "-"), "=", 2)[0]] = true
		}
	}
	for _, st := range s.Settings {
		if st.Required && !set[st.Env] && !args[st.Name] {
			v.errf("%s: required setting -%s (%s) is not set", where, st.Name, st.Env)
		}
	}
	value := func(env string) string {
		if val, ok := values[env]; ok {
			return val
		}
		st, _ := s.Setting(env)
		return st.Default
	}

	// Ports, from the address settings as the container will see them.
	ports := map[string]int{}
	for _, x := range asList(c["ports"]) {
		p := asMap(x)
		name, _ := p["name"].(string)
		n, _ := asInt(p["containerPort"])
		ports[name] = n
	}
	for _, l := range []struct{ name, env string }{{"http", envHTTPAddr}, {"grpc", envGRPCAddr}, {"admin", envAdminAddr}} {
		want := 0
		if _, p, err := net.SplitHostPort(value(l.env)); err == nil {
			want, _ = strconv.Atoi(p)
		}
		got, ok := ports[l.name]
		switch {
		case want == 0 && ok:
			v.errf("%s: container port %s, but %s is %q", where, l.name, l.env, value(l.env))
		case want != 0 && !ok:
			v.errf("%s: no container port %s for %s=%s", where, l.name, l.env, value(l.env))
		case want != got:
			v.errf("%s: container port %s is %d, but %s=%s", where, l.name, got, l.env, value(l.env))
		}
	}
	for name := range ports {
		if name != "http" && name != "grpc" && name != "admin" {
			v.errf("%s: container port %s matches no listener of the service", where, name)
		}
	}
	admin := ports["admin"]

	// Probes and scraping, on the admin listener.
	for probe, path := range map[string]string{"livenessProbe": LivenessPath, "readinessProbe": ReadinessPath, "startupProbe": LivenessPath} {
		pr := asMap(c[probe])
		if pr == nil {
			if probe != "startupProbe" {
				v.errf("%s: no %s", where, probe)
			}
			continue
		}
		get := asMap(pr["httpGet"])
		if get["path"] != path {
			v.errf("%s: %s GETs %v, want %s", where, probe, get["path"], path)
		}
		if n, ok := asInt(get["port"]); (ok && n != admin) || (!ok && get["port"] != "admin") {
			v.errf("%s: %s on port %v, want the admin port %d", where, probe, get["port"], admin)
		}
	}
	ann := asMap(dep.Get("spec", "template", "metadata", "annotations"))
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(admin) || ann["prometheus.io/path"] != MetricsPath {
		v.errf("%s: Prometheus annotations %v, want scrape true on port %d path %s", where, ann, admin, MetricsPath)
	}

	// Shutdown.
	grace, _ := asInt(podSpec(dep)["terminationGracePeriodSeconds"])
	if _, ok := podSpec(dep)["terminationGracePeriodSeconds"]; !ok {
		grace = 30
	}
	st, _ := time.ParseDuration(value(envShutdownTimeout))
	dd, _ := time.ParseDuration(value(envDrainDelay))
	if _, has := s.Setting(envDrainDelay); has && dd <= 0 {
		v.errf("%s: %s is %q: a terminating pod would close its listeners while endpoints still route to it", where, envDrainDelay, value(envDrainDelay))
	}
	if time.Duration(grace)*time.Second <= st+dd {
		v.errf("%s: terminationGracePeriodSeconds %d does not exceed %s %s + %s %s", where, grace, envShutdownTimeout, st, envDrainDelay, dd)
	}

	// Addresses must name Services and their ports.
	for _, name := range slices.Sorted(maps.Keys(values)) {
		val := values[name]
		if val == madeValue {
			continue // a Secret's value, made in the cluster: not known here
		}
		switch {
		case strings.HasSuffix(name, "_GRPC_ADDRS"), strings.HasSuffix(name, "_HTTP_ADDRS"):
			for _, a := range strings.Split(val, ",") {
				v.address(where, name, strings.TrimPrefix(strings.TrimSpace(a), "dns:///"))
			}
		case name == envNATSURL:
			for _, u := range strings.Split(val, ",") {
				v.urlAddress(where, name, u)
			}
		case name == "OTEL_EXPORTER_OTLP_ENDPOINT":
			v.urlAddress(where, name, val)
		case name == envStoreDSN:
			if strings.HasPrefix(val, "postgres://") || strings.HasPrefix(val, "postgresql://") {
				v.urlAddress(where, name, val)
			} else {
				v.errf("%s: %s is not a PostgreSQL DSN; a pod's SQLite file would not survive it", where, name)
			}
		}
	}
	if _, ok := s.Setting(envStoreDSN); ok && !set[envStoreDSN] {
		v.errf("%s: %s is not set: the service would use its default SQLite file in the container", where, envStoreDSN)
	}
	if _, ok := s.Setting(envNATSURL); ok && value(envNATSURL) == "" {
		v.errf("%s: %s is empty: every replica would start its own embedded NATS server", where, envNATSURL)
	}
}

func (v *verifier) urlAddress(where, env, raw string) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		v.errf("%s: %s=%q is not a URL with a host", where, env, raw)
		return
	}
	v.address(where, env, u.Host)
}

// address checks that host:port names a Service (by its short name, as pods in the same
// namespace resolve it) and one of its ports.
func (v *verifier) address(where, env, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errf("%s: %s: %q is not host:port", where, env, addr)
		return
	}
	svc, ok := v.get("Service", strings.SplitN(host, ".", 2)[0])
	if !ok {
		v.errf("%s: %s: %s names no Service", where, env, host)
		return
	}
	n, _ := strconv.Atoi(port)
	for _, x := range asList(svc.Get("spec", "ports")) {
		if p, _ := asInt(asMap(x)["port"]); p == n {
			if strings.HasSuffix(env, "_GRPC_ADDRS") && asMap(x)["name"] != "grpc" {
				v.errf("%s: %s: port %d of Service %s is not its grpc port", where, env, n, svc.Name())
			}
			return
		}
	}
	v.errf("%s: %s: Service %s has no port %d", where, env, svc.Name(), n)
}

func matches(sel, lbls map[string]any) bool {
	if len(sel) == 0 {
		return false
	}
	for k, val := range sel {
		if lbls[k] != val {
			return false
		}
	}
	return true
}

// selectors checks workloads, Services, PodDisruptionBudgets, HorizontalPodAutoscalers
// the ConfigMaps and Secrets pods mount, and the ConfigMaps and Secrets the engines'
// (StatefulSets') environment reads.
func (v *verifier) selectors() {
	var workloads []Object
	for _, o := range v.order {
		if o.Kind() == "Deployment" || o.Kind() == "StatefulSet" {
			workloads = append(workloads, o)
			if o.Kind() == "StatefulSet" {
				// The engines' environment (NATS's passwords): every reference exists.
				// The services' is checked with their settings.
				for _, ct := range containers(o) {
					for _, e := range asList(ct["env"]) {
						v.resolve(o.ID(), asMap(e))
					}
				}
			}
			if !matches(asMap(o.Get("spec", "selector", "matchLabels")), asMap(o.Get("spec", "template", "metadata", "labels"))) {
				v.errf("%s: selector does not match its pod template's labels", o.ID())
			}
			for _, x := range asList(podSpec(o)["volumes"]) {
				vol := asMap(x)
				if cm := asMap(vol["configMap"]); cm != nil {
					if _, ok := v.get("ConfigMap", fmt.Sprint(cm["name"])); !ok {
						v.errf("%s: volume %v mounts missing ConfigMap %v", o.ID(), vol["name"], cm["name"])
					}
				}
				if sec := asMap(vol["secret"]); sec != nil {
					if _, ok := v.get("Secret", fmt.Sprint(sec["secretName"])); !ok && v.made[fmt.Sprint(sec["secretName"])] == nil {
						v.errf("%s: volume %v mounts missing Secret %v", o.ID(), vol["name"], sec["secretName"])
					}
				}
			}
			for _, c := range containers(o) {
				for _, x := range asList(c["env"]) {
					v.resolve(o.ID(), asMap(x))
				}
			}
			if o.Kind() == "StatefulSet" {
				if _, ok := v.get("Service", o.str("spec", "serviceName")); !ok {
					v.errf("%s: serviceName %q names no Service", o.ID(), o.str("spec", "serviceName"))
				}
			}
		}
	}
	selected := func(sel map[string]any) []Object {
		var out []Object
		for _, w := range workloads {
			if matches(sel, asMap(w.Get("spec", "template", "metadata", "labels"))) {
				out = append(out, w)
			}
		}
		return out
	}
	for _, o := range v.order {
		switch o.Kind() {
		case "Service":
			if o.str("spec", "type") == "ExternalName" {
				continue
			}
			ws := selected(asMap(o.Get("spec", "selector")))
			if len(ws) == 0 {
				v.errf("%s: selector %v selects no workload", o.ID(), o.Get("spec", "selector"))
				continue
			}
			for _, x := range asList(o.Get("spec", "ports")) {
				p := asMap(x)
				target := p["targetPort"]
				if target == nil {
					target = p["port"]
				}
				for _, w := range ws {
					if !hasPort(w, target) {
						v.errf("%s: port %v targets %v, which %s has not", o.ID(), p["name"], target, w.ID())
					}
				}
			}
		case "Certificate":
			ref := asMap(o.Get("spec", "issuerRef"))
			if ref["kind"] == "Issuer" || ref["kind"] == nil {
				if _, ok := v.get("Issuer", fmt.Sprint(ref["name"])); !ok {
					v.errf("%s: issuerRef names Issuer %v, which the manifests do not define", o.ID(), ref["name"])
				}
			}
		case "Ingress":
			for _, x := range asList(o.Get("spec", "rules")) {
				for _, y := range asList(asMap(asMap(x)["http"])["paths"]) {
					b := asMap(asMap(asMap(y)["backend"])["service"])
					svc, ok := v.get("Service", fmt.Sprint(b["name"]))
					if !ok {
						v.errf("%s: backend Service %v does not exist", o.ID(), b["name"])
						continue
					}
					port := asMap(b["port"])
					found := false
					for _, p := range asList(svc.Get("spec", "ports")) {
						n, _ := asInt(asMap(p)["port"])
						pn, _ := asInt(port["number"])
						found = found || (port["name"] != nil && asMap(p)["name"] == port["name"]) || (port["number"] != nil && n == pn)
					}
					if !found {
						v.errf("%s: backend port %v is not a port of %s", o.ID(), port, svc.ID())
					}
				}
			}
			for _, x := range asList(o.Get("spec", "tls")) {
				name := fmt.Sprint(asMap(x)["secretName"])
				if _, ok := v.get("Secret", name); !ok && v.made[name] == nil {
					v.errf("%s: TLS Secret %s is neither defined nor made by a Certificate", o.ID(), name)
				}
			}
		case "PodDisruptionBudget":
			if len(selected(asMap(o.Get("spec", "selector", "matchLabels")))) == 0 {
				v.errf("%s: selects no workload", o.ID())
			}
		case "HorizontalPodAutoscaler":
			ref := asMap(o.Get("spec", "scaleTargetRef"))
			t, ok := v.get(fmt.Sprint(ref["kind"]), fmt.Sprint(ref["name"]))
			if !ok {
				v.errf("%s: scales %v/%v, which does not exist", o.ID(), ref["kind"], ref["name"])
				continue
			}
			if _, fixed := asMap(t["spec"])["replicas"]; fixed {
				v.errf("%s: %s sets replicas, which every apply would reset under the autoscaler", o.ID(), t.ID())
			}
			if c := containers(t); len(c) > 0 && asMap(asMap(c[0]["resources"])["requests"])["cpu"] == nil {
				v.errf("%s: %s has no CPU request to compute utilization from", o.ID(), t.ID())
			}
		}
	}
}

func hasPort(w Object, target any) bool {
	for _, c := range containers(w) {
		for _, x := range asList(c["ports"]) {
			p := asMap(x)
			if n, ok := asInt(target); ok {
				if cp, _ := asInt(p["containerPort"]); cp == n {
					return true
				}
			} else if p["name"] == target {
				return true
			}
		}
	}
	return false
}

// BuildTree builds a kustomization directory the way kustomize does, for the features
// the renderer's trees use: resources (files and included kustomizations), strategic
// merge patches (mappings merged, null deleting a key, lists of named elements merged
// by name, other lists replaced), namespace and image overrides. Along the way it checks
// that every listed resource and patch file exists, that every patch targets an object
// the resources define, and that every image override names an image a container uses.
func BuildTree(dir string) ([]Object, error) {
	var errs []error
	objs := buildKustomization(dir, &errs, map[string]bool{})
	return objs, errors.Join(errs...)
}

type kustomizationFile struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	Resources  []string `yaml:"resources"`
	Patches    []struct {
		Path string `yaml:"path"`
	} `yaml:"patches"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

func buildKustomization(dir string, errs *[]error, seen map[string]bool) []Object {
	fail := func(format string, args ...any) { *errs = append(*errs, fmt.Errorf(format, args...)) }
	abs, _ := filepath.Abs(dir)
	if seen[abs] {
		fail("%s: included twice", dir)
		return nil
	}
	seen[abs] = true
	kfile := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(kfile)
	if err != nil {
		fail("%w", err)
		return nil
	}
	var k kustomizationFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		fail("%s: %w", kfile, err)
		return nil
	}
	if k.Kind != "Kustomization" {
		fail("%s: kind %q, want Kustomization", kfile, k.Kind)
	}
	readFile := func(what, rel string) []Object {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		f, err := os.Open(p)
		if err != nil {
			fail("%s: %s %s: %w", kfile, what, rel, err)
			return nil
		}
		defer f.Close()
		o, err := ReadObjects(f)
		if err != nil {
			fail("%s: %w", p, err)
		}
		return o
	}
	var objs []Object
	for _, r := range k.Resources {
		p := filepath.Join(dir, filepath.FromSlash(r))
		st, err := os.Stat(p)
		switch {
		case err != nil:
			fail("%s: resource %s: %w", kfile, r, err)
		case st.IsDir():
			objs = append(objs, buildKustomization(p, errs, seen)...)
		default:
			objs = append(objs, readFile("resource", r)...)
		}
	}
	byID := map[string]Object{}
	for _, o := range objs {
		byID[o.ID()] = o
	}
	for _, p := range k.Patches {
		for _, po := range readFile("patch", p.Path) {
			target, ok := byID[po.ID()]
			if !ok {
				fail("%s: patch %s targets %s, which no resource defines (have %s)", kfile, p.Path, po.ID(),
					strings.Join(slices.Sorted(maps.Keys(byID)), ", "))
				continue
			}
			merge(target, po)
		}
	}
	used := map[string]bool{}
	for _, img := range k.Images {
		for _, o := range objs {
			for _, c := range containers(o) {
				name, tag, _ := strings.Cut(fmt.Sprint(c["image"]), ":")
				if name != img.Name {
					continue
				}
				used[img.Name] = true
				if img.NewName != "" {
					name = img.NewName
				}
				if img.NewTag != "" {
					tag = img.NewTag
				}
				if tag != "" {
					name += ":" + tag
				}
				c["image"] = name
			}
		}
		if !used[img.Name] {
			fail("%s: image %s is used by no container", kfile, img.Name)
		}
	}
	if k.Namespace != "" {
		for _, o := range objs {
			if o.Kind() != "Namespace" {
				asMap(o["metadata"])["namespace"] = k.Namespace
			}
		}
	}
	return objs
}

// merge applies a strategic merge patch to dst in place.
func merge(dst, patch map[string]any) {
	for k, pv := range patch {
		if pv == nil {
			delete(dst, k)
			continue
		}
		switch p := pv.(type) {
		case map[string]any:
			if d, ok := dst[k].(map[string]any); ok {
				merge(d, p)
				continue
			}
		case []any:
			if d, ok := dst[k].([]any); ok && mergeByName[k] {
				dst[k] = mergeNamed(d, p)
				continue
			}
		}
		dst[k] = pv
	}
}

// mergeNamed merges a patch's list of named elements into dst: elements of both are
// merged, and those dst lacks go before dst's, in the patch's order, as kustomize puts
// them.
func mergeNamed(dst, patch []any) []any {
	var added []any
	for _, x := range patch {
		pm := asMap(x)
		found := false
		for _, y := range dst {
			if dm := asMap(y); dm != nil && dm["name"] == pm["name"] {
				merge(dm, pm)
				found = true
			}
		}
		if !found {
			added = append(added, pm)
		}
	}
	return append(added, dst...)
}
