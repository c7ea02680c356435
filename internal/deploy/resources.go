package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Images of the engines the manifests run beside the services.
const (
	natsImage      = "nats:2.15-alpine"
	collectorImage = "otel/opentelemetry-collector-contrib:0.140.0"
	jaegerImage    = "jaegertracing/jaeger:2.12.0"
	postgresImage  = "postgres:17-alpine"
)

// Ports of the engines.
const (
	natsClientPort  = 4222
	natsClusterPort = 6222
	natsMonitorPort = 8222
	otlpGRPCPort    = 4317
	otlpHTTPPort    = 4318
	postgresPort    = 5432
)

func labels(sys *System, name, component string) omap {
	return omap{
		{"app.kubernetes.io/name", name},
		{"app.kubernetes.io/part-of", sys.Name},
		{"app.kubernetes.io/component", component},
	}
}

func selector(sys *System, name string) omap {
	return omap{{"app.kubernetes.io/name", name}, {"app.kubernetes.io/part-of", sys.Name}}
}

func meta(name string, l omap) omap { return omap{{"name", name}, {"labels", l}} }

func envConfigMap(sys *System) string { return sys.Name + "-env" }

func storeSecret(svc string) string { return svc + "-store" }

func headless(name string) string { return name + "-headless" }

// natsURL is the services' NATS_URL: tls:// where the NATS servers have TLS.
func natsURL(p profile) string {
	if p.natsTLS {
		return fmt.Sprintf("tls://nats:%d", natsClientPort)
	}
	return fmt.Sprintf("nats://nats:%d", natsClientPort)
}

// sharedEnv is the shared ConfigMap's data: every value the renderer may give a service,
// by environment variable.
func sharedEnv(sys *System, p profile, o Options) omap {
	data := map[string]string{
		envLogLevel:                   p.logLevel,
		envShutdownTimeout:            shutdownTimeout.String(),
		envDrainDelay:                 drainDelay.String(),
		envNATSURL:                    natsURL(p),
		envStreamReplicas:             strconv.Itoa(p.streamReplicas),
		"OTEL_EXPORTER_OTLP_ENDPOINT": fmt.Sprintf("http://otel-collector:%d", otlpHTTPPort),
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_TRACES_SAMPLER":         p.sampler,
		"OTEL_TRACES_SAMPLER_ARG":     p.samplerArg,
	}
	used := func(env string) bool {
		if isPlatformEnv(env) {
			return true
		}
		for _, s := range sys.Services {
			if _, ok := s.Setting(env); ok {
				return true
			}
		}
		return false
	}
	if used(envJWKSURL) || used(envJWTIssuer) || used(envJWTAudience) {
		data[envJWKSURL], data[envJWTIssuer], data[envJWTAudience] = o.JWKSURL, o.JWTIssuer, o.JWTAudience
	}
	for _, s := range sys.Services {
		if port := s.Port(envGRPCAddr); port != 0 {
			data[peerEnv(s.Name, "GRPC")] = peerAddr(sys, s.Name, port)
		}
		if port := s.Port(envHTTPAddr); port != 0 {
			data[peerEnv(s.Name, "HTTP")] = fmt.Sprintf("%s:%d", s.Name, port)
		}
	}
	var out omap
	for _, k := range slices.Sorted(maps.Keys(data)) {
		if used(k) {
			out = append(out, kv{k, data[k]})
		}
	}
	return out
}

// peerAddr is a peer's gRPC address: its headless Service, whose DNS name lists one
// address per ready pod. Services whose setting accepts dns:/// targets (svckit App.Dial)
// get one, so they balance over every pod; others get host:port, which resolves to one
// pod per connection.
func peerAddr(sys *System, peer string, port int) string {
	env := peerEnv(peer, "GRPC")
	for _, s := range sys.Services {
		if st, ok := s.Setting(env); ok && !strings.Contains(st.Help, "dns:///") {
			return fmt.Sprintf("%s:%d", headless(peer), port)
		}
	}
	return fmt.Sprintf("dns:///%s:%d", headless(peer), port)
}

// peerEnv is the variable through which a service learns a peer's addresses, as
// `svckit dev` sets it: ORDERS_GRPC_ADDRS.
func peerEnv(peer, transport string) string {
	return strings.ToUpper(strings.ReplaceAll(peer, "-", "_")) + "_" + transport + "_ADDRS"
}

// baseDocs returns the base's objects built with profile p; built with an overlay's
// profile they are what the overlay's patches make of the base.
func baseDocs(sys *System, o Options, p profile) []doc {
	cm := omap{{"apiVersion", "v1"}, {"kind", "ConfigMap"},
		{"metadata", meta(envConfigMap(sys), labels(sys, sys.Name, "config"))},
		{"data", sharedEnv(sys, p, o)}}
	docs := []doc{{envConfigMap(sys) + ".yaml", cm}}
	for i := range sys.Services {
		s := &sys.Services[i]
		f := s.Name + ".yaml"
		docs = append(docs,
			doc{f, deployment(sys, o, s, p)},
			doc{f, service(sys, s)},
			doc{f, headlessService(sys, s)},
			doc{f, pdb(sys, s.Name, "service")})
	}
	if usesNATS(sys) {
		for _, d := range natsDocs(sys, p) {
			docs = append(docs, doc{"nats.yaml", d})
		}
	}
	for _, d := range collectorDocs(sys, p) {
		docs = append(docs, doc{"otel-collector.yaml", d})
	}
	return docs
}

// envFor returns the container environment of a service: every setting the renderer
// knows how to fill that the service has, then svckit.yaml's env.
func envFor(sys *System, o Options, s *Service, p profile) []any {
	shared := sharedEnv(sys, p, o)
	fromCM := func(name string) omap {
		return omap{{"name", name}, {"valueFrom", omap{{"configMapKeyRef", omap{{"name", envConfigMap(sys)}, {"key", name}}}}}}
	}
	var env []any
	for _, st := range s.Settings {
		if _, extra := s.Env[st.Env]; extra {
			continue
		}
		switch {
		case st.Env == envStoreDSN:
			env = append(env, omap{{"name", st.Env}, {"valueFrom", omap{{"secretKeyRef", omap{{"name", storeSecret(s.Name)}, {"key", envStoreDSN}}}}}})
		case (st.Env == envNATSUser || st.Env == envNATSPassword) && natsUser(s):
			if st.Env == envNATSUser {
				env = append(env, natsUserEnv(s)...)
			}
		case st.Env == envInstanceID:
			env = append(env, omap{{"name", st.Env}, {"valueFrom", omap{{"fieldRef", omap{{"fieldPath", "metadata.name"}}}}}})
		default:
			if _, ok := shared.get(st.Env); ok {
				env = append(env, fromCM(st.Env))
			}
		}
	}
	for _, name := range PlatformEnv {
		if _, ok := s.Env[name]; !ok {
			env = append(env, fromCM(name))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, omap{{"name", k}, {"value", s.Env[k]}})
	}
	return env
}

// usesNATS reports whether a service reads NATS_URL, so the system needs a NATS server.
func usesNATS(sys *System) bool {
	for _, s := range sys.Services {
		if _, ok := s.Setting(envNATSURL); ok {
			return true
		}
	}
	return false
}

func hasStore(s *Service) bool { _, ok := s.Setting(envStoreDSN); return ok }

func containerPorts(s *Service) []any {
	var ports []any
	for _, l := range []struct{ name, env string }{{"http", envHTTPAddr}, {"grpc", envGRPCAddr}, {"admin", envAdminAddr}} {
		if port := s.Port(l.env); port != 0 {
			ports = append(ports, omap{{"name", l.name}, {"containerPort", port}, {"protocol", "TCP"}})
		}
	}
	return ports
}

func probe(path string, period, failures int) omap {
	return omap{{"httpGet", omap{{"path", path}, {"port", "admin"}}}, {"periodSeconds", period},
		{"timeoutSeconds", 2}, {"failureThreshold", failures}}
}

func restricted() omap {
	return omap{{"allowPrivilegeEscalation", false}, {"readOnlyRootFilesystem", true},
		{"capabilities", omap{{"drop", []any{"ALL"}}}}}
}

func podSecurity(uid int) omap {
	return omap{{"runAsNonRoot", true}, {"runAsUser", uid}, {"runAsGroup", uid}, {"fsGroup", uid},
		{"seccompProfile", omap{{"type", "RuntimeDefault"}}}}
}

func replicasFor(s *Service, p profile) int {
	return max(s.Replicas, 1, p.minReplicas)
}

func deployment(sys *System, o Options, s *Service, p profile) omap {
	l := labels(sys, s.Name, "service")
	// IfNotPresent: images loaded into a local cluster (kind load, minikube image load)
	// are used as they are; give every release its own tag.
	c := omap{{"name", s.Name}, {"image", Image(sys, s.Name)}, {"imagePullPolicy", "IfNotPresent"}}
	if len(s.Args) > 0 {
		c = append(c, kv{"args", toAny(s.Args)})
	}
	env := envFor(sys, o, s, p)
	mounts := []any{omap{{"name", "tmp"}, {"mountPath", "/tmp"}}}
	volumes := []any{omap{{"name", "tmp"}, {"emptyDir", omap{{"sizeLimit", "64Mi"}}}}}
	if p.mtls {
		// First, as kustomize's strategic merge puts the elements a patch adds to a
		// list before the base's.
		env = append(mtlsEnv(sys, s), env...)
		mounts = append([]any{omap{{"name", "mtls"}, {"mountPath", mtlsDir}, {"readOnly", true}}}, mounts...)
		volumes = append([]any{omap{{"name", "mtls"}, {"secret", omap{{"secretName", mtlsSecret(s.Name)}, {"defaultMode", 0o440}}}}}, volumes...)
	}
	c = append(c,
		kv{"ports", containerPorts(s)},
		kv{"env", env},
		kv{"resources", p.resources},
		kv{"startupProbe", probe(LivenessPath, 2, 60)},
		kv{"livenessProbe", probe(LivenessPath, 10, 3)},
		kv{"readinessProbe", probe(ReadinessPath, 2, 2)},
		kv{"securityContext", restricted()},
		kv{"volumeMounts", mounts},
	)
	grace := int((shutdownTimeout + drainDelay + closeMargin) / time.Second)
	spec := omap{}
	if !p.hpa {
		spec = append(spec, kv{"replicas", replicasFor(s, p)})
	}
	spec = append(spec,
		kv{"revisionHistoryLimit", 5},
		kv{"selector", omap{{"matchLabels", selector(sys, s.Name)}}},
		kv{"strategy", omap{{"type", "RollingUpdate"}, {"rollingUpdate", omap{{"maxSurge", 1}, {"maxUnavailable", 0}}}}},
		kv{"template", omap{
			{"metadata", omap{{"labels", l}, {"annotations", omap{
				{"prometheus.io/scrape", "true"},
				{"prometheus.io/port", strconv.Itoa(s.Port(envAdminAddr))},
				{"prometheus.io/path", MetricsPath},
			}}}},
			{"spec", omap{
				{"automountServiceAccountToken", false},
				{"terminationGracePeriodSeconds", grace},
				{"securityContext", podSecurity(65532)},
				{"topologySpreadConstraints", []any{omap{{"maxSkew", 1}, {"topologyKey", "kubernetes.io/hostname"},
					{"whenUnsatisfiable", "ScheduleAnyway"}, {"labelSelector", omap{{"matchLabels", selector(sys, s.Name)}}}}}},
				{"containers", []any{c}},
				{"volumes", volumes},
			}},
		}},
	)
	return omap{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", meta(s.Name, l)}, {"spec", spec}}
}

func service(sys *System, s *Service) omap {
	var ports []any
	for _, cp := range containerPorts(s) {
		name, _ := cp.(omap).get("name")
		port, _ := cp.(omap).get("containerPort")
		sp := omap{{"name", name}, {"port", port}, {"targetPort", name}, {"protocol", "TCP"}}
		if name == "grpc" {
			sp = append(sp, kv{"appProtocol", "grpc"})
		}
		ports = append(ports, sp)
	}
	return omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta(s.Name, labels(sys, s.Name, "service"))},
		{"spec", omap{{"type", "ClusterIP"}, {"selector", selector(sys, s.Name)}, {"ports", ports}}}}
}

// headlessService lists the ready pods of a service in DNS, for gRPC clients that
// balance over the peers themselves.
func headlessService(sys *System, s *Service) omap {
	var ports []any
	if port := s.Port(envGRPCAddr); port != 0 {
		ports = append(ports, omap{{"name", "grpc"}, {"port", port}, {"targetPort", "grpc"}, {"protocol", "TCP"}, {"appProtocol", "grpc"}})
	} else {
		ports = append(ports, omap{{"name", "admin"}, {"port", s.Port(envAdminAddr)}, {"targetPort", "admin"}, {"protocol", "TCP"}})
	}
	return omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta(headless(s.Name), labels(sys, s.Name, "service"))},
		{"spec", omap{{"clusterIP", "None"}, {"selector", selector(sys, s.Name)}, {"ports", ports}}}}
}

func pdb(sys *System, name, component string) omap {
	return omap{{"apiVersion", "policy/v1"}, {"kind", "PodDisruptionBudget"}, {"metadata", meta(name, labels(sys, name, component))},
		{"spec", omap{{"maxUnavailable", 1}, {"selector", omap{{"matchLabels", selector(sys, name)}}}}}}
}

func hpa(sys *System, s *Service, p profile) omap {
	return omap{{"apiVersion", "autoscaling/v2"}, {"kind", "HorizontalPodAutoscaler"}, {"metadata", meta(s.Name, labels(sys, s.Name, "service"))},
		{"spec", omap{
			{"scaleTargetRef", omap{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", s.Name}}},
			{"minReplicas", replicasFor(s, p)},
			{"maxReplicas", max(10, 2*replicasFor(s, p))},
			{"metrics", []any{omap{{"type", "Resource"}, {"resource", omap{{"name", "cpu"},
				{"target", omap{{"type", "Utilization"}, {"averageUtilization", 70}}}}}}}},
			{"behavior", omap{{"scaleDown", omap{{"stabilizationWindowSeconds", 300}}}}},
		}}}
}

// natsConf is the NATS server configuration: JetStream on the pod's volume, lame-duck
// mode at shutdown, authorization with a user per service (anonymous clients refused),
// with more than one replica a cluster whose routes are the StatefulSet's stable DNS
// names, and with p.natsTLS TLS on the client port and the routes.
func natsConf(sys *System, p profile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: $POD_NAME\nport: %d\nhttp_port: %d\npid_file: \"/var/run/nats/nats.pid\"\n", natsClientPort, natsMonitorPort)
	b.WriteString("lame_duck_duration: 30s\nlame_duck_grace_period: 10s\n")
	b.WriteString("jetstream {\n  store_dir: \"/data\"\n  max_memory_store: 256MB\n  max_file_store: 8GB\n}\n")
	if p.natsTLS {
		b.WriteString(natsTLSConf(""))
	}
	b.WriteString(natsAuthConf(sys))
	if p.natsReplicas > 1 {
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  port: %d\n  connect_retries: 120\n", sys.Name, natsClusterPort)
		if p.natsTLS {
			// Routes verify each other's certificates (nats-server always does in a
			// cluster tls block).
			b.WriteString(natsTLSConf("  "))
		}
		b.WriteString("  routes: [\n")
		for i := range p.natsReplicas {
			fmt.Fprintf(&b, "    nats://nats-%d.%s:%d\n", i, headless("nats"), natsClusterPort)
		}
		b.WriteString("  ]\n}\n")
	}
	return b.String()
}

func natsDocs(sys *System, p profile) []omap {
	l := labels(sys, "nats", "messaging")
	cm := omap{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", meta("nats-config", l)},
		{"data", omap{{"nats.conf", natsConf(sys, p)}}}}
	client := omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta("nats", l)},
		{"spec", omap{{"selector", selector(sys, "nats")}, {"ports", []any{
			omap{{"name", "client"}, {"port", natsClientPort}, {"targetPort", "client"}},
			omap{{"name", "monitor"}, {"port", natsMonitorPort}, {"targetPort", "monitor"}},
		}}}}}
	hl := omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta(headless("nats"), l)},
		{"spec", omap{{"clusterIP", "None"}, {"publishNotReadyAddresses", true}, {"selector", selector(sys, "nats")}, {"ports", []any{
			omap{{"name", "client"}, {"port", natsClientPort}, {"targetPort", "client"}},
			omap{{"name", "cluster"}, {"port", natsClusterPort}, {"targetPort", "cluster"}},
			omap{{"name", "monitor"}, {"port", natsMonitorPort}, {"targetPort", "monitor"}},
		}}}}}
	health := func(q string, period, failures int) omap {
		return omap{{"httpGet", omap{{"path", "/healthz" + q}, {"port", "monitor"}}}, {"periodSeconds", period},
			{"timeoutSeconds", 5}, {"failureThreshold", failures}}
	}
	mounts := []any{
		omap{{"name", "config"}, {"mountPath", "/etc/nats"}},
		omap{{"name", "data"}, {"mountPath", "/data"}},
		omap{{"name", "pid"}, {"mountPath", "/var/run/nats"}},
	}
	volumes := []any{
		omap{{"name", "config"}, {"configMap", omap{{"name", "nats-config"}}}},
		omap{{"name", "pid"}, {"emptyDir", omap{}}},
	}
	if p.natsTLS {
		// First, as kustomize's strategic merge puts the elements a patch adds before
		// the base's. A directory mount: renewed certificates reach the files.
		mounts = append([]any{omap{{"name", "tls"}, {"mountPath", natsTLSDir}, {"readOnly", true}}}, mounts...)
		volumes = append([]any{omap{{"name", "tls"}, {"secret", omap{{"secretName", natsTLSSecret}, {"defaultMode", 0o440}}}}}, volumes...)
	}
	c := omap{{"name", "nats"}, {"image", natsImage}, {"imagePullPolicy", "IfNotPresent"},
		{"args", []any{"--config", "/etc/nats/nats.conf"}},
		{"env", append(natsEnv(sys), omap{{"name", "POD_NAME"}, {"valueFrom", omap{{"fieldRef", omap{{"fieldPath", "metadata.name"}}}}}})},
		{"ports", []any{
			omap{{"name", "client"}, {"containerPort", natsClientPort}},
			omap{{"name", "cluster"}, {"containerPort", natsClusterPort}},
			omap{{"name", "monitor"}, {"containerPort", natsMonitorPort}},
		}},
		{"resources", resources("100m", "256Mi", "1", "1Gi")},
		{"startupProbe", health("", 5, 90)},
		{"livenessProbe", health("?js-enabled-only=true", 30, 3)},
		{"readinessProbe", health("?js-server-only=true", 10, 3)},
		{"lifecycle", omap{{"preStop", omap{{"exec", omap{{"command", []any{"nats-server", "--signal", "ldm=/var/run/nats/nats.pid"}}}}}}}},
		{"securityContext", restricted()},
		{"volumeMounts", mounts},
	}
	sts := omap{{"apiVersion", "apps/v1"}, {"kind", "StatefulSet"}, {"metadata", meta("nats", l)},
		{"spec", omap{
			{"replicas", p.natsReplicas},
			{"serviceName", headless("nats")},
			{"podManagementPolicy", "Parallel"},
			{"selector", omap{{"matchLabels", selector(sys, "nats")}}},
			{"template", omap{
				{"metadata", omap{{"labels", l}, {"annotations", omap{
					{"prometheus.io/scrape", "false"},
				}}}},
				{"spec", omap{
					{"automountServiceAccountToken", false},
					{"terminationGracePeriodSeconds", 60},
					{"securityContext", podSecurity(1000)},
					{"topologySpreadConstraints", []any{omap{{"maxSkew", 1}, {"topologyKey", "kubernetes.io/hostname"},
						{"whenUnsatisfiable", "DoNotSchedule"}, {"labelSelector", omap{{"matchLabels", selector(sys, "nats")}}}}}},
					{"containers", []any{c}},
					{"volumes", volumes},
				}},
			}},
			{"volumeClaimTemplates", []any{omap{{"metadata", omap{{"name", "data"}}},
				{"spec", omap{{"accessModes", []any{"ReadWriteOnce"}}, {"resources", omap{{"requests", omap{{"storage", "10Gi"}}}}}}}}}},
		}}}
	return []omap{cm, client, hl, sts, pdb(sys, "nats", "messaging")}
}

// collectorConfig is the OpenTelemetry Collector's pipeline: OTLP in (gRPC and HTTP),
// memory limiter and batch, OTLP/gRPC out to TRACES_ENDPOINT.
const collectorConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  batch:
    send_batch_size: 1024
    timeout: 2s
exporters:
  otlp:
    endpoint: ${env:TRACES_ENDPOINT}
    tls:
      insecure: ${env:TRACES_INSECURE}
extensions:
  health_check:
    endpoint: 0.0.0.0:13133
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
`

func collectorDocs(sys *System, p profile) []omap {
	l := labels(sys, "otel-collector", "observability")
	cm := omap{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", meta("otel-collector", l)},
		{"data", omap{{"config.yaml", collectorConfig}}}}
	envCM := omap{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", meta("otel-collector-env", l)},
		{"data", omap{{"TRACES_ENDPOINT", p.tracesEndpoint}, {"TRACES_INSECURE", strconv.FormatBool(p.tracesInsecure)}}}}
	fromCM := func(k string) omap {
		return omap{{"name", k}, {"valueFrom", omap{{"configMapKeyRef", omap{{"name", "otel-collector-env"}, {"key", k}}}}}}
	}
	health := omap{{"httpGet", omap{{"path", "/"}, {"port", "health"}}}, {"periodSeconds", 10}}
	c := omap{{"name", "otel-collector"}, {"image", collectorImage}, {"imagePullPolicy", "IfNotPresent"},
		{"args", []any{"--config=/conf/config.yaml"}},
		{"env", []any{fromCM("TRACES_ENDPOINT"), fromCM("TRACES_INSECURE")}},
		{"ports", []any{
			omap{{"name", "otlp-grpc"}, {"containerPort", otlpGRPCPort}},
			omap{{"name", "otlp-http"}, {"containerPort", otlpHTTPPort}},
			omap{{"name", "health"}, {"containerPort", 13133}},
		}},
		{"resources", resources("100m", "128Mi", "1", "512Mi")},
		{"livenessProbe", health},
		{"readinessProbe", health},
		{"securityContext", restricted()},
		{"volumeMounts", []any{omap{{"name", "config"}, {"mountPath", "/conf"}}}},
	}
	dep := omap{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", meta("otel-collector", l)},
		{"spec", omap{
			{"replicas", 1},
			{"selector", omap{{"matchLabels", selector(sys, "otel-collector")}}},
			{"template", omap{
				{"metadata", omap{{"labels", l}}},
				{"spec", omap{
					{"automountServiceAccountToken", false},
					{"securityContext", podSecurity(10001)},
					{"containers", []any{c}},
					{"volumes", []any{omap{{"name", "config"}, {"configMap", omap{{"name", "otel-collector"}}}}}},
				}},
			}},
		}}}
	svc := omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta("otel-collector", l)},
		{"spec", omap{{"selector", selector(sys, "otel-collector")}, {"ports", []any{
			omap{{"name", "otlp-grpc"}, {"port", otlpGRPCPort}, {"targetPort", "otlp-grpc"}, {"appProtocol", "grpc"}},
			omap{{"name", "otlp-http"}, {"port", otlpHTTPPort}, {"targetPort", "otlp-http"}},
		}}}}}
	return []omap{cm, envCM, dep, svc}
}

// overlayDocs returns the objects an overlay adds to the base.
func overlayDocs(sys *System, o Options, p profile) []doc {
	docs := []doc{{"namespace.yaml", namespace(sys, o)}}
	var stores []*Service
	for i := range sys.Services {
		if hasStore(&sys.Services[i]) {
			stores = append(stores, &sys.Services[i])
		}
	}
	if usesNATS(sys) {
		f := "nats-secrets.yaml"
		if p.overlay == Prod {
			f = "external-secrets.yaml"
		}
		for _, d := range natsSecretDocs(sys, o, p) {
			docs = append(docs, doc{f, d})
		}
		if p.natsTLS {
			docs = append(docs, doc{"nats-tls.yaml", natsCertificate(sys, o)})
		}
	}
	switch p.overlay {
	case Dev:
		for _, s := range stores {
			dsn := fmt.Sprintf("postgres://%s:%s-dev-password@postgres:%d/%s?sslmode=disable", s.Name, s.Name, postgresPort, s.Name)
			docs = append(docs, doc{"store-secrets.yaml", omap{{"apiVersion", "v1"}, {"kind", "Secret"},
				{"metadata", meta(storeSecret(s.Name), labels(sys, s.Name, "service"))},
				{"type", "Opaque"}, {"stringData", omap{{envStoreDSN, dsn}}}}})
		}
		if len(stores) > 0 {
			for _, d := range postgresDocs(sys, stores) {
				docs = append(docs, doc{"postgres.yaml", d})
			}
		}
		for _, d := range jaegerDocs(sys) {
			docs = append(docs, doc{"jaeger.yaml", d})
		}
	case Prod:
		// The DSNs carry passwords: the prod overlay commits none, it asks External
		// Secrets for them.
		for _, s := range stores {
			docs = append(docs, doc{"external-secrets.yaml", storeExternalSecret(sys, o, s)})
		}
		if len(stores) > 0 {
			docs = append(docs, doc{"postgres.yaml", omap{{"apiVersion", "v1"}, {"kind", "Service"},
				{"metadata", meta("postgres", labels(sys, "postgres", "database"))},
				{"spec", omap{{"type", "ExternalName"}, {"externalName", o.PostgresHost},
					{"ports", []any{omap{{"name", "postgres"}, {"port", postgresPort}}}}}}}})
		}
		for _, d := range mtlsDocs(sys, o) {
			docs = append(docs, doc{"mtls.yaml", d})
		}
		for _, d := range networkPolicies(sys, o) {
			docs = append(docs, doc{"network-policies.yaml", d})
		}
		for i := range sys.Services {
			docs = append(docs, doc{"hpa.yaml", hpa(sys, &sys.Services[i], p)})
		}
		for _, d := range publicDocs(sys, o) {
			docs = append(docs, doc{"public.yaml", d})
		}
	}
	return docs
}

// postgresInit creates a role and a database per service; the image runs it once, on
// an empty data directory.
func postgresInit(stores []*Service) string {
	var b strings.Builder
	b.WriteString("-- One database per service, each owned by its own role (development only).\n")
	for _, s := range stores {
		fmt.Fprintf(&b, "CREATE ROLE %q LOGIN PASSWORD '%s-dev-password';\nCREATE DATABASE %q OWNER %q;\n", s.Name, s.Name, s.Name, s.Name)
	}
	return b.String()
}

func postgresDocs(sys *System, stores []*Service) []omap {
	l := labels(sys, "postgres", "database")
	secret := omap{{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", meta("postgres-admin", l)},
		{"type", "Opaque"}, {"stringData", omap{{"POSTGRES_PASSWORD", "dev-only-admin-password"}}}}
	initCM := omap{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", meta("postgres-init", l)},
		{"data", omap{{"init.sql", postgresInit(stores)}}}}
	svc := omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta("postgres", l)},
		{"spec", omap{{"selector", selector(sys, "postgres")}, {"ports", []any{
			omap{{"name", "postgres"}, {"port", postgresPort}, {"targetPort", "postgres"}}}}}}}
	ready := func(period int) omap {
		return omap{{"exec", omap{{"command", []any{"pg_isready", "-U", "postgres", "-h", "127.0.0.1"}}}}, {"periodSeconds", period}}
	}
	c := omap{{"name", "postgres"}, {"image", postgresImage}, {"imagePullPolicy", "IfNotPresent"},
		{"env", []any{
			omap{{"name", "POSTGRES_PASSWORD"}, {"valueFrom", omap{{"secretKeyRef", omap{{"name", "postgres-admin"}, {"key", "POSTGRES_PASSWORD"}}}}}},
			omap{{"name", "PGDATA"}, {"value", "/var/lib/postgresql/data/pgdata"}},
		}},
		{"ports", []any{omap{{"name", "postgres"}, {"containerPort", postgresPort}}}},
		{"resources", resources("100m", "256Mi", "1", "1Gi")},
		{"readinessProbe", ready(5)},
		{"livenessProbe", ready(20)},
		{"securityContext", restricted()},
		{"volumeMounts", []any{
			omap{{"name", "data"}, {"mountPath", "/var/lib/postgresql/data"}},
			omap{{"name", "init"}, {"mountPath", "/docker-entrypoint-initdb.d"}},
			omap{{"name", "run"}, {"mountPath", "/var/run/postgresql"}},
			omap{{"name", "tmp"}, {"mountPath", "/tmp"}},
		}},
	}
	sts := omap{{"apiVersion", "apps/v1"}, {"kind", "StatefulSet"}, {"metadata", meta("postgres", l)},
		{"spec", omap{
			{"replicas", 1},
			{"serviceName", "postgres"},
			{"selector", omap{{"matchLabels", selector(sys, "postgres")}}},
			{"template", omap{
				{"metadata", omap{{"labels", l}}},
				{"spec", omap{
					{"automountServiceAccountToken", false},
					{"securityContext", podSecurity(70)},
					{"containers", []any{c}},
					{"volumes", []any{
						omap{{"name", "init"}, {"configMap", omap{{"name", "postgres-init"}}}},
						omap{{"name", "run"}, {"emptyDir", omap{}}},
						omap{{"name", "tmp"}, {"emptyDir", omap{}}},
					}},
				}},
			}},
			{"volumeClaimTemplates", []any{omap{{"metadata", omap{{"name", "data"}}},
				{"spec", omap{{"accessModes", []any{"ReadWriteOnce"}}, {"resources", omap{{"requests", omap{{"storage", "5Gi"}}}}}}}}}},
		}}}
	return []omap{secret, initCM, svc, sts}
}

func jaegerDocs(sys *System) []omap {
	l := labels(sys, "jaeger", "observability")
	c := omap{{"name", "jaeger"}, {"image", jaegerImage}, {"imagePullPolicy", "IfNotPresent"},
		{"env", []any{omap{{"name", "JAEGER_LISTEN_HOST"}, {"value", "0.0.0.0"}}}},
		{"ports", []any{
			omap{{"name", "otlp-grpc"}, {"containerPort", otlpGRPCPort}},
			omap{{"name", "ui"}, {"containerPort", 16686}},
		}},
		{"resources", resources("100m", "128Mi", "1", "1Gi")},
		{"readinessProbe", omap{{"httpGet", omap{{"path", "/"}, {"port", "ui"}}}, {"periodSeconds", 10}}},
		{"securityContext", restricted()},
		{"volumeMounts", []any{omap{{"name", "tmp"}, {"mountPath", "/tmp"}}}},
	}
	dep := omap{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", meta("jaeger", l)},
		{"spec", omap{
			{"replicas", 1},
			{"selector", omap{{"matchLabels", selector(sys, "jaeger")}}},
			{"template", omap{
				{"metadata", omap{{"labels", l}}},
				{"spec", omap{
					{"automountServiceAccountToken", false},
					{"securityContext", podSecurity(10001)},
					{"containers", []any{c}},
					{"volumes", []any{omap{{"name", "tmp"}, {"emptyDir", omap{}}}}},
				}},
			}},
		}}}
	svc := omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", meta("jaeger", l)},
		{"spec", omap{{"selector", selector(sys, "jaeger")}, {"ports", []any{
			omap{{"name", "otlp-grpc"}, {"port", otlpGRPCPort}, {"targetPort", "otlp-grpc"}, {"appProtocol", "grpc"}},
			omap{{"name", "ui"}, {"port", 16686}, {"targetPort", "ui"}},
		}}}}}
	return []omap{dep, svc}
}
