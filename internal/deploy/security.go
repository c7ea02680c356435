package deploy

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The settings of svckit.Config that carry mTLS between services (tls.go), and the
// admin listener's profiling switch.
const (
	envTLSCert  = "TLS_CERT"
	envTLSKey   = "TLS_KEY"
	envTLSCA    = "TLS_CA"
	envTLSHTTP  = "TLS_HTTP"
	envTLSAllow = "TLS_ALLOW"
	envPprof    = "PPROF"
)

// mtlsDir is where every pod of the prod overlay finds its mTLS files: the Secret that
// cert-manager writes for the service's Certificate (tls.crt, tls.key, ca.crt), mounted
// as a directory, so that a renewed certificate reaches the files the service's
// reloading mtls.Source reads (a subPath mount would never be updated).
const mtlsDir = "/etc/svckit/mtls"

// The files of a cert-manager (kubernetes.io/tls) Secret, by the setting that names them.
var mtlsFiles = []struct{ env, key string }{{envTLSCert, "tls.crt"}, {envTLSKey, "tls.key"}, {envTLSCA, "ca.crt"}}

// mtlsCertDuration is how long a service certificate is valid; cert-manager renews it
// when two thirds have passed, and the services reload it without a restart.
const mtlsCertDuration = "168h"

func mtlsSecret(svc string) string { return svc + "-mtls" }

func publicTLSSecret(svc string) string { return svc + "-public-tls" }

// callers returns the services that call svc over transport ("GRPC" or "HTTP"): those
// with a setting for its addresses, SVC_GRPC_ADDRS. No other service is let through
// to that port.
func callers(sys *System, svc, transport string) []string {
	var out []string
	for _, s := range sys.Services {
		if _, ok := s.Setting(peerEnv(svc, transport)); ok && s.Name != svc {
			out = append(out, s.Name)
		}
	}
	return out
}

// peersOf returns the services of the system that s calls over transport.
func peersOf(sys *System, s *Service, transport string) []*Service {
	var out []*Service
	for i := range sys.Services {
		p := &sys.Services[i]
		if _, ok := s.Setting(peerEnv(p.Name, transport)); ok && p.Name != s.Name {
			out = append(out, p)
		}
	}
	return out
}

// mtlsEnv returns the environment that turns on a service's mTLS: its mounted
// certificate, key and CA bundle; a plain HTTP listener on the public service, whose
// HTTP port is the edge behind the Ingress; and, when other services call it, only
// their identities admitted. svckit.yaml's env wins over each.
func mtlsEnv(sys *System, s *Service) []any {
	var env []any
	add := func(name, value string) {
		if _, ok := s.Setting(name); !ok {
			return
		}
		if _, user := s.Env[name]; user {
			return
		}
		env = append(env, omap{{"name", name}, {"value", value}})
	}
	for _, f := range mtlsFiles {
		add(f.env, mtlsDir+"/"+f.key)
	}
	if _, ok := s.Setting(envNATSURL); ok {
		// The NATS servers' certificate comes from the same issuer: the CA bundle of
		// the service's own Secret verifies it.
		add(envNATSTLSCA, mtlsDir+"/ca.crt")
	}
	if s.Public {
		add(envTLSHTTP, "plain")
	}
	allow := callers(sys, s.Name, "GRPC")
	for _, c := range callers(sys, s.Name, "HTTP") {
		if !slices.Contains(allow, c) {
			allow = append(allow, c)
		}
	}
	if len(allow) > 0 {
		add(envTLSAllow, strings.Join(allow, ","))
	}
	return env
}

// issuerRef returns the cert-manager issuer of the services' certificates.
func issuerRef(sys *System, o Options) (kind, name string) {
	if o.Issuer == "" {
		return "Issuer", sys.Name + "-ca"
	}
	kind, name, _ = kindName(o.Issuer, "Issuer", "ClusterIssuer")
	return kind, name
}

// mtlsDocs returns the prod overlay's mTLS objects: the default CA Issuer unless
// another issuer is named, and a Certificate per service whose identity,
// spiffe://TRUST-DOMAIN/svc/SERVICE, is what package mtls reads.
func mtlsDocs(sys *System, o Options) []omap {
	var docs []omap
	kind, name := issuerRef(sys, o)
	if o.Issuer == "" {
		// A CA issuer: cert-manager signs with the CA in Secret NAME (tls.crt,
		// tls.key), which the operator creates from `svckit certs init`; the manifests
		// never hold it.
		docs = append(docs, omap{{"apiVersion", "cert-manager.io/v1"}, {"kind", "Issuer"},
			{"metadata", meta(name, labels(sys, name, "mtls"))},
			{"spec", omap{{"ca", omap{{"secretName", name}}}}}})
	}
	for _, s := range sys.Services {
		id := "spiffe://" + o.TrustDomain + "/svc/" + s.Name
		docs = append(docs, omap{{"apiVersion", "cert-manager.io/v1"}, {"kind", "Certificate"},
			{"metadata", meta(mtlsSecret(s.Name), labels(sys, s.Name, "service"))},
			{"spec", omap{
				{"secretName", mtlsSecret(s.Name)},
				{"duration", mtlsCertDuration},
				{"privateKey", omap{{"algorithm", "ECDSA"}, {"size", 256}, {"encoding", "PKCS8"}, {"rotationPolicy", "Always"}}},
				{"usages", []any{"digital signature", "server auth", "client auth"}},
				{"uris", []any{id}},
				{"dnsNames", []any{s.Name, headless(s.Name), s.Name + "." + o.Namespace + ".svc", headless(s.Name) + "." + o.Namespace + ".svc"}},
				{"issuerRef", omap{{"group", "cert-manager.io"}, {"kind", kind}, {"name", name}}},
			}}})
	}
	return docs
}

// storeExternalSecret asks External Secrets for a service's store DSN, which carries
// its database password: the Secret SERVICE-store is made in the cluster from the
// store's key SYSTEM-SERVICE-store-dsn and never committed.
func storeExternalSecret(sys *System, o Options, s *Service) omap {
	return externalSecret(sys, o, storeSecret(s.Name), envStoreDSN, sys.Name+"-"+s.Name+"-store-dsn", labels(sys, s.Name, "service"))
}

// externalSecret asks External Secrets to make the Secret name, with key taken from the
// secret store's key remote.
func externalSecret(sys *System, o Options, name, key, remote string, l omap) omap {
	kind, store, _ := kindName(o.SecretStore, "SecretStore", "ClusterSecretStore")
	return omap{{"apiVersion", "external-secrets.io/v1"}, {"kind", "ExternalSecret"},
		{"metadata", meta(name, l)},
		{"spec", omap{
			{"refreshInterval", "1h"},
			{"secretStoreRef", omap{{"kind", kind}, {"name", store}}},
			{"target", omap{{"name", name}, {"creationPolicy", "Owner"}}},
			{"data", []any{omap{{"secretKey", key}, {"remoteRef", omap{{"key", remote}}}}}},
		}}}
}

// namespace is the overlay's Namespace, whose pods must meet the restricted Pod
// Security Standard.
func namespace(sys *System, o Options) omap {
	return omap{{"apiVersion", "v1"}, {"kind", "Namespace"},
		{"metadata", omap{{"name", o.Namespace}, {"labels", omap{
			{"app.kubernetes.io/part-of", sys.Name},
			{"pod-security.kubernetes.io/enforce", "restricted"},
			{"pod-security.kubernetes.io/enforce-version", "latest"},
			{"pod-security.kubernetes.io/audit", "restricted"},
			{"pod-security.kubernetes.io/warn", "restricted"},
		}}}}}
}

// publicHost is the host name of a public service.
func publicHost(sys *System, o Options, s *Service) string {
	n := 0
	for _, x := range sys.Services {
		if x.Public && x.Port(envHTTPAddr) != 0 {
			n++
		}
	}
	if n > 1 {
		return s.Name + "." + o.PublicHost
	}
	return o.PublicHost
}

// publicDocs takes outside traffic to each public service's HTTP port, over TLS: an
// Ingress whose certificate cert-manager obtains for the public host. The gRPC and
// admin ports (metrics, profiling) stay inside the cluster.
func publicDocs(sys *System, o Options) []omap {
	var docs []omap
	kind, name, _ := kindName(o.PublicIssuer, "Issuer", "ClusterIssuer")
	for i := range sys.Services {
		s := &sys.Services[i]
		if !s.Public || s.Port(envHTTPAddr) == 0 {
			continue
		}
		host := publicHost(sys, o, s)
		docs = append(docs,
			omap{{"apiVersion", "cert-manager.io/v1"}, {"kind", "Certificate"},
				{"metadata", meta(publicTLSSecret(s.Name), labels(sys, s.Name, "service"))},
				{"spec", omap{
					{"secretName", publicTLSSecret(s.Name)},
					{"privateKey", omap{{"algorithm", "ECDSA"}, {"size", 256}, {"rotationPolicy", "Always"}}},
					{"usages", []any{"digital signature", "server auth"}},
					{"dnsNames", []any{host}},
					{"issuerRef", omap{{"group", "cert-manager.io"}, {"kind", kind}, {"name", name}}},
				}}},
			omap{{"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"},
				{"metadata", meta(s.Name+"-public", labels(sys, s.Name, "service"))},
				{"spec", omap{
					{"ingressClassName", o.IngressClass},
					{"tls", []any{omap{{"hosts", []any{host}}, {"secretName", publicTLSSecret(s.Name)}}}},
					{"rules", []any{omap{{"host", host}, {"http", omap{{"paths", []any{omap{
						{"path", "/"}, {"pathType", "Prefix"},
						{"backend", omap{{"service", omap{{"name", s.Name}, {"port", omap{{"name", "http"}}}}}}},
					}}}}}}}},
				}}})
	}
	return docs
}

// Network policy peers and ports.

func podPeer(sys *System, name string) omap {
	return omap{{"podSelector", omap{{"matchLabels", selector(sys, name)}}}}
}

// podsPeer selects the pods of several workloads of the system.
func podsPeer(sys *System, names []string) omap {
	return omap{{"podSelector", omap{
		{"matchLabels", omap{{"app.kubernetes.io/part-of", sys.Name}}},
		{"matchExpressions", []any{omap{{"key", "app.kubernetes.io/name"}, {"operator", "In"}, {"values", toAny(names)}}}},
	}}}
}

func namespacePeer(ns string) omap {
	return omap{{"namespaceSelector", omap{{"matchLabels", omap{{"kubernetes.io/metadata.name", ns}}}}}}
}

func tcp(ports ...int) []any {
	var out []any
	for _, p := range ports {
		out = append(out, omap{{"protocol", "TCP"}, {"port", p}})
	}
	return out
}

func rule(dir string, peers []omap, ports []any) omap {
	r := omap{}
	if len(peers) > 0 {
		r = append(r, kv{dir, toAny(peers)})
	}
	return append(r, kv{"ports", ports})
}

func policy(sys *System, name string, podSelector omap, ingress, egress []any) omap {
	spec := omap{{"podSelector", podSelector}, {"policyTypes", []any{"Ingress", "Egress"}}}
	if len(ingress) > 0 {
		spec = append(spec, kv{"ingress", ingress})
	}
	if len(egress) > 0 {
		spec = append(spec, kv{"egress", egress})
	}
	return omap{{"apiVersion", "networking.k8s.io/v1"}, {"kind", "NetworkPolicy"},
		{"metadata", meta(name, labels(sys, name, "network-policy"))}, {"spec", spec}}
}

// urlPort returns the port a URL's host is reached on.
func urlPort(raw string) int {
	u, err := url.Parse(raw)
	if err != nil {
		return 0
	}
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	switch u.Scheme {
	case "https":
		return 443
	case "http":
		return 80
	}
	return 0
}

// networkPolicies returns the prod overlay's NetworkPolicies: everything denied in and
// out, then per workload what the manifest declares. A service takes calls on its gRPC
// (HTTP) port only from the services with a setting for its addresses, and the public
// service's HTTP port from the ingress controller's namespace; admin ports take the
// monitoring namespace only; NATS takes clients from the services that read NATS_URL.
// Egress follows the same declarations, plus DNS, the store, and the identity
// provider's keys.
func networkPolicies(sys *System, o Options) []omap {
	docs := []omap{
		policy(sys, "default-deny", omap{}, nil, nil),
		{{"apiVersion", "networking.k8s.io/v1"}, {"kind", "NetworkPolicy"},
			{"metadata", meta("allow-dns", labels(sys, "allow-dns", "network-policy"))},
			{"spec", omap{{"podSelector", omap{}}, {"policyTypes", []any{"Egress"}}, {"egress", []any{omap{
				{"to", []any{omap{
					{"namespaceSelector", omap{{"matchLabels", omap{{"kubernetes.io/metadata.name", "kube-system"}}}}},
					{"podSelector", omap{{"matchLabels", omap{{"k8s-app", "kube-dns"}}}}},
				}}},
				{"ports", []any{omap{{"protocol", "UDP"}, {"port", 53}}, omap{{"protocol", "TCP"}, {"port", 53}}}},
			}}}}}},
	}
	var all, natsClients []string
	for _, s := range sys.Services {
		all = append(all, s.Name)
		if _, ok := s.Setting(envNATSURL); ok {
			natsClients = append(natsClients, s.Name)
		}
	}
	for i := range sys.Services {
		s := &sys.Services[i]
		var in, out []any
		for _, t := range []struct{ transport, env string }{{"GRPC", envGRPCAddr}, {"HTTP", envHTTPAddr}} {
			port := s.Port(t.env)
			if port == 0 {
				continue
			}
			var from []omap
			for _, c := range callers(sys, s.Name, t.transport) {
				from = append(from, podPeer(sys, c))
			}
			if len(from) > 0 {
				in = append(in, rule("from", from, tcp(port)))
			}
			if t.transport == "HTTP" && s.Public {
				in = append(in, rule("from", []omap{namespacePeer(o.IngressNamespace)}, tcp(port)))
			}
			for _, p := range peersOf(sys, s, t.transport) {
				if port := p.Port(t.env); port != 0 {
					out = append(out, rule("to", []omap{podPeer(sys, p.Name)}, tcp(port)))
				}
			}
		}
		in = append(in, rule("from", []omap{namespacePeer(o.MonitoringNamespace)}, tcp(s.Port(envAdminAddr))))
		if slices.Contains(natsClients, s.Name) {
			out = append(out, rule("to", []omap{podPeer(sys, "nats")}, tcp(natsClientPort)))
		}
		out = append(out, rule("to", []omap{podPeer(sys, "otel-collector")}, tcp(otlpHTTPPort)))
		if hasStore(s) {
			// The managed server is outside the cluster, at addresses no selector names.
			out = append(out, rule("to", nil, tcp(postgresPort)))
		}
		if _, ok := s.Setting(envJWKSURL); ok {
			if port := urlPort(o.JWKSURL); port != 0 {
				out = append(out, rule("to", nil, tcp(port)))
			}
		}
		docs = append(docs, policy(sys, s.Name, omap{{"matchLabels", selector(sys, s.Name)}}, in, out))
	}
	if len(natsClients) > 0 {
		docs = append(docs, policy(sys, "nats", omap{{"matchLabels", selector(sys, "nats")}},
			[]any{
				rule("from", []omap{podsPeer(sys, natsClients)}, tcp(natsClientPort)),
				rule("from", []omap{podPeer(sys, "nats")}, tcp(natsClusterPort)),
				rule("from", []omap{namespacePeer(o.MonitoringNamespace)}, tcp(natsMonitorPort)),
			},
			[]any{rule("to", []omap{podPeer(sys, "nats")}, tcp(natsClusterPort))}))
	}
	var traces []any
	if _, p, err := net.SplitHostPort(o.TracesEndpoint); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			traces = []any{rule("to", nil, tcp(n))}
		}
	}
	docs = append(docs, policy(sys, "otel-collector", omap{{"matchLabels", selector(sys, "otel-collector")}},
		[]any{rule("from", []omap{podsPeer(sys, all)}, tcp(otlpGRPCPort, otlpHTTPPort))}, traces))
	return docs
}
