package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A small evaluator of NetworkPolicies (networking.k8s.io/v1) over the workloads of one
// namespace, for [CheckProduction]: which sources a pod's port admits, and whether a
// pod may send to a destination.

// endpoint is one end of a connection: a workload of the namespace (pod labels), a pod
// of another namespace (namespace and pod labels), or an address outside the cluster.
type endpoint struct {
	workload string            // the workload's name, for pods of the namespace
	ns       map[string]any    // the labels of the pod's namespace
	labels   map[string]any    // the pod's labels
	ports    map[string]string // the pod's named container ports: name → "number/protocol"
	external bool              // an address outside the cluster
}

type netPolicy struct {
	obj      Object
	selector map[string]any
	ingress  bool // isolates its pods for ingress
	egress   bool
}

func (c *prodCheck) netPolicies() []netPolicy {
	var out []netPolicy
	for _, o := range c.order {
		if o.Kind() != "NetworkPolicy" {
			continue
		}
		p := netPolicy{obj: o, selector: asMap(o.Get("spec", "podSelector"))}
		types := asList(o.Get("spec", "policyTypes"))
		if len(types) == 0 {
			types = []any{"Ingress"}
			if o.Get("spec", "egress") != nil {
				types = append(types, "Egress")
			}
		}
		p.ingress = slices.Contains(types, any("Ingress"))
		p.egress = slices.Contains(types, any("Egress"))
		out = append(out, p)
	}
	return out
}

// selectorMatches reports whether a LabelSelector (matchLabels, matchExpressions)
// selects labels; an empty selector selects everything, a missing one nothing.
func selectorMatches(sel map[string]any, lbls map[string]any, present bool) bool {
	if !present {
		return false
	}
	for k, v := range asMap(sel["matchLabels"]) {
		if lbls[k] != v {
			return false
		}
	}
	for _, x := range asList(sel["matchExpressions"]) {
		e := asMap(x)
		key, _ := e["key"].(string)
		val, has := lbls[key]
		in := slices.Contains(asList(e["values"]), val)
		switch e["operator"] {
		case "In":
			if !has || !in {
				return false
			}
		case "NotIn":
			if has && in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// workloadEndpoints returns the namespace's workloads as endpoints, by name.
func (c *prodCheck) workloadEndpoints() map[string]endpoint {
	out := map[string]endpoint{}
	for _, w := range c.order {
		if w.Kind() != "Deployment" && w.Kind() != "StatefulSet" {
			continue
		}
		e := endpoint{workload: w.Name(), ns: map[string]any{"kubernetes.io/metadata.name": c.o.Namespace}, labels: asMap(w.Get("spec", "template", "metadata", "labels")), ports: map[string]string{}}
		for _, ct := range containers(w) {
			for _, x := range asList(ct["ports"]) {
				p := asMap(x)
				proto, _ := p["protocol"].(string)
				if proto == "" {
					proto = "TCP"
				}
				if name, ok := p["name"].(string); ok {
					n, _ := asInt(p["containerPort"])
					e.ports[name] = fmt.Sprintf("%d/%s", n, proto)
				}
			}
		}
		out[w.Name()] = e
	}
	return out
}

// portMatches reports whether a rule's ports admit port/proto at the pod dst.
func portMatches(rule map[string]any, dst endpoint, port int, proto string) bool {
	ports := asList(rule["ports"])
	if len(ports) == 0 {
		return true
	}
	for _, x := range ports {
		p := asMap(x)
		pp, _ := p["protocol"].(string)
		if pp == "" {
			pp = "TCP"
		}
		if pp != proto {
			continue
		}
		if p["port"] == nil {
			return true
		}
		if n, ok := asInt(p["port"]); ok {
			end, hasEnd := asInt(p["endPort"])
			if n == port || (hasEnd && port >= n && port <= end) {
				return true
			}
			continue
		}
		if name, ok := p["port"].(string); ok && dst.ports[name] == fmt.Sprintf("%d/%s", port, proto) {
			return true
		}
	}
	return false
}

// peerMatches reports whether a rule's peer (podSelector, namespaceSelector, ipBlock)
// names the endpoint e; own is the policy's namespace.
func peerMatches(peer map[string]any, e endpoint, own string) bool {
	if peer["ipBlock"] != nil {
		return e.external
	}
	if e.external {
		return false
	}
	podSel, hasPod := peer["podSelector"]
	if nsSel, hasNS := peer["namespaceSelector"]; hasNS {
		if !selectorMatches(asMap(nsSel), e.ns, true) {
			return false
		}
	} else if e.ns["kubernetes.io/metadata.name"] != own {
		return false // a podSelector alone names pods of the policy's namespace
	}
	return !hasPod || selectorMatches(asMap(podSel), e.labels, true)
}

// allowed reports whether src may open a connection to dst's port/proto: src's egress
// policies let it out and, for a destination in the namespace, dst's ingress policies
// let it in.
func (c *prodCheck) allowed(pols []netPolicy, src, dst endpoint, port int, proto string) bool {
	return c.admits(pols, "egress", src, dst, port, proto) &&
		(dst.workload == "" || c.admits(pols, "ingress", dst, src, port, proto))
}

// admits evaluates the policies that select pod in one direction: for "ingress",
// whether other may connect to pod's port; for "egress", whether pod may connect to
// other's port.
func (c *prodCheck) admits(pols []netPolicy, dir string, pod, other endpoint, port int, proto string) bool {
	key, peersKey := "ingress", "from"
	if dir == "egress" {
		key, peersKey = "egress", "to"
	}
	isolated := false
	for _, p := range pols {
		if (dir == "ingress" && !p.ingress) || (dir == "egress" && !p.egress) {
			continue
		}
		if !selectorMatches(p.selector, pod.labels, true) {
			continue
		}
		isolated = true
		for _, x := range asList(p.obj.Get("spec", key)) {
			r := asMap(x)
			target := pod
			if dir == "egress" {
				target = other
			}
			if !portMatches(r, target, port, proto) {
				continue
			}
			peers := asList(r[peersKey])
			if len(peers) == 0 {
				return true
			}
			for _, y := range peers {
				if peerMatches(asMap(y), other, c.o.Namespace) {
					return true
				}
			}
		}
	}
	return !isolated
}

// sources describes who may connect to a workload's port: "pod:NAME" for each workload
// of the namespace, "namespace:NAME" for a namespace whose pods may, "anywhere" for
// rules that name no peer or any address.
func (c *prodCheck) sources(pols []netPolicy, ws map[string]endpoint, dst endpoint, port int) []string {
	set := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(ws)) {
		if c.admits(pols, "ingress", dst, ws[name], port, "TCP") {
			set["pod:"+name] = true
		}
	}
	if c.admits(pols, "ingress", dst, endpoint{external: true}, port, "TCP") {
		set["anywhere"] = true
	}
	// Namespaces: the ones the rules name by kubernetes.io/metadata.name, and one that
	// no rule names, which stands for every other.
	names := map[string]bool{"some-other-namespace": true}
	for _, p := range pols {
		for _, x := range asList(p.obj.Get("spec", "ingress")) {
			for _, y := range asList(asMap(x)["from"]) {
				if n, ok := asMap(asMap(asMap(y)["namespaceSelector"])["matchLabels"])["kubernetes.io/metadata.name"].(string); ok {
					names[n] = true
				}
			}
		}
	}
	for n := range names {
		other := endpoint{ns: map[string]any{"kubernetes.io/metadata.name": n}, labels: map[string]any{}}
		if c.admits(pols, "ingress", dst, other, port, "TCP") {
			if n == "some-other-namespace" {
				set["anywhere"] = true
			} else {
				set["namespace:"+n] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func (c *prodCheck) networkPolicies() {
	pols := c.netPolicies()
	deny := false
	for _, p := range pols {
		spec := asMap(p.obj["spec"])
		if len(p.selector) == 0 && p.selector != nil && p.ingress && p.egress && spec["ingress"] == nil && spec["egress"] == nil {
			deny = true
		}
	}
	if !deny {
		c.errf("no default-deny NetworkPolicy (podSelector {}, policyTypes Ingress and Egress, no rules)")
	}
	ws := c.workloadEndpoints()
	expect := func(what string, dst endpoint, port int, want []string) {
		slices.Sort(want)
		if got := c.sources(pols, ws, dst, port); !slices.Equal(got, want) {
			c.errf("NetworkPolicies: %s (port %d) admits [%s], want [%s]", what, port, strings.Join(got, " "), strings.Join(want, " "))
		}
	}
	reach := func(src endpoint, dst endpoint, port int, proto, what string) {
		if !c.allowed(pols, src, dst, port, proto) {
			c.errf("NetworkPolicies: %s cannot reach %s (port %d/%s)", src.workload, what, port, proto)
		}
	}
	dns := endpoint{ns: map[string]any{"kubernetes.io/metadata.name": "kube-system"}, labels: map[string]any{"k8s-app": "kube-dns"}}
	var natsClients, all []string
	for i := range c.sys.Services {
		s := &c.sys.Services[i]
		e, ok := ws[s.Name]
		if !ok {
			continue
		}
		all = append(all, "pod:"+s.Name)
		for _, t := range []struct{ transport, env string }{{"GRPC", envGRPCAddr}, {"HTTP", envHTTPAddr}} {
			port := s.Port(t.env)
			if port == 0 {
				continue
			}
			var want []string
			for _, cl := range callers(c.sys, s.Name, t.transport) {
				want = append(want, "pod:"+cl)
				if src, ok := ws[cl]; ok {
					reach(src, e, port, "TCP", s.Name+"'s "+strings.ToLower(t.transport)+" port")
				}
			}
			if t.transport == "HTTP" && s.Public {
				want = append(want, "namespace:"+c.o.IngressNamespace)
			}
			expect(s.Name+"'s "+strings.ToLower(t.transport)+" port", e, port, want)
		}
		expect(s.Name+"'s admin port", e, s.Port(envAdminAddr), []string{"namespace:" + c.o.MonitoringNamespace})
		reach(e, dns, 53, "UDP", "DNS")
		if _, ok := s.Setting(envNATSURL); ok {
			natsClients = append(natsClients, "pod:"+s.Name)
			if nats, ok := ws["nats"]; ok {
				reach(e, nats, natsClientPort, "TCP", "NATS")
			}
		}
		if col, ok := ws["otel-collector"]; ok {
			reach(e, col, otlpHTTPPort, "TCP", "the OpenTelemetry Collector")
		}
	}
	if nats, ok := ws["nats"]; ok {
		expect("NATS's client port", nats, natsClientPort, natsClients)
		expect("NATS's monitoring port", nats, natsMonitorPort, []string{"namespace:" + c.o.MonitoringNamespace})
		if natsReplicasOf(c.verifier) > 1 {
			expect("NATS's cluster port", nats, natsClusterPort, []string{"pod:nats"})
			reach(nats, nats, natsClusterPort, "TCP", "the other NATS servers")
		}
	}
	if col, ok := ws["otel-collector"]; ok {
		expect("the collector's OTLP port", col, otlpHTTPPort, all)
	}
}

func natsReplicasOf(v *verifier) int {
	sts, ok := v.get("StatefulSet", "nats")
	if !ok {
		return 0
	}
	n, _ := asInt(sts.Get("spec", "replicas"))
	return n
}
