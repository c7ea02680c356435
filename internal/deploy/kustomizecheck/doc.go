// Package kustomizecheck holds tests that build the manifests svckit deploy renders
// with the kustomize library itself (what kubectl kustomize runs) and decode every
// object strictly into the Kubernetes API types. It is a separate module so that the
// svckit module does not depend on kustomize and the Kubernetes API packages.
package kustomizecheck
