// Package deploy renders Kubernetes manifests for a system of svckit services — the
// system `svckit dev` runs from svckit.yaml, or one service made by `svckit new` — and
// checks manifests against the services' real configuration.
//
// [LoadSystem] builds every service and runs it with -help, which lists each setting with
// its environment variable and default (package config), so the renderer knows which
// variables each service reads and which ports its listeners use. [Render] writes a
// kustomize tree:
//
//	base/                 per service: Deployment (probes on the admin port, resources,
//	                      restricted security context, Prometheus annotations, drain delay
//	                      and grace period), Service, headless Service for gRPC peers,
//	                      PodDisruptionBudget; the shared ConfigMap SYSTEM-env; NATS with
//	                      JetStream; an OpenTelemetry Collector
//	overlays/dev/         one NATS node, PostgreSQL with a database per service, Jaeger
//	overlays/prod/        a three-node NATS JetStream cluster, HorizontalPodAutoscalers,
//	                      managed PostgreSQL through an ExternalName Service, larger resources;
//	                      mTLS between every pair of services (a cert-manager Certificate per
//	                      service, mounted where TLS_CERT, TLS_KEY and TLS_CA point), default-deny
//	                      NetworkPolicies with allows derived from the services' settings, an
//	                      Ingress with TLS to the public service, store DSNs and NATS
//	                      passwords from External Secrets (nothing secret committed), TLS
//	                      on NATS's client port and routes (a cert-manager Certificate),
//	                      images pinned by tag
//
// Both overlays' namespaces enforce the restricted Pod Security Standard, and their NATS
// refuses anonymous clients: each service logs in as its own user (NATS_USER,
// NATS_PASSWORD from its Secret SERVICE-nats), whose permissions, in the server's
// authorization block, are those `svckit dev` gives it (natsserver.ServiceUser).
// The overlays' patches are computed as the difference between the base and the objects
// the overlay's settings produce, so `kubectl kustomize overlays/NAME` equals
// [RenderOverlay] for NAME. [Verify] checks an overlay's objects against the services'
// settings; [CheckProduction] checks what the prod overlay promises (the renderer refuses
// to write a prod overlay that fails it); [BuildTree] builds an overlay of a tree as kustomize would, checking its
// kustomizations on the way.
package deploy
