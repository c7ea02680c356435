// Package kustomizecheck holds tests that build the manifests svckit deploy renders
// with the kustomize library itself (what kubectl kustomize runs), decode every object
// strictly into the Kubernetes API types, validate every object of both overlays with
// kubeconform in strict mode — against JSON schemas made from the OpenAPI v3 documents
// in the k8s.io/kubernetes module (api/openapi-spec/v3) and from the CRDs of
// cert-manager and External Secrets, all fetched as Go modules — evaluate every pod
// against the restricted Pod Security Standard, and check the shop's prod overlay with
// deploy.CheckProduction. It is a separate module so that the svckit module does not
// depend on kustomize and the Kubernetes API packages.
package kustomizecheck
