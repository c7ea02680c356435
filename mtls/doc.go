// Package mtls secures service-to-service calls with mutual TLS: every service has a
// certificate that names it, servers require and verify their callers' certificates, and
// the caller's service identity reaches the endpoint's context.
//
// An identity is a SPIFFE-style URI in the certificate's subject alternative names,
// spiffe://TRUST-DOMAIN/svc/SERVICE, such as spiffe://svckit.local/svc/orders.
//
// For development, [NewCA] (or [EnsureCA], which is idempotent) makes a CA — ECDSA P-256,
// name-constrained to its trust domain — saved as ca.crt and ca.key, and [CA.Issue]
// issues per-service certificates (both server and client authentication, a week by
// default) saved as SERVICE.crt and SERVICE.key; `svckit certs init` and `svckit certs
// issue` do the same from the command line. In production the certificates come from
// cert-manager, a SPIFFE/SPIRE agent or any CA that writes the same three files.
//
// A [Source] serves the three files — certificate, key, CA bundle — to TLS: its
// [Source.ServerTLS] requires client certificates, [Source.ClientTLS] presents the
// service's own, and both verify the peer against the CA bundle loaded last and check
// its identity. [Source.Run] reloads changed files without a restart; bad files never
// replace good ones.
//
// On the server, [PeerFromContext] returns the verified identity of the calling service
// over HTTP and gRPC alike (it reads the transport's TLS state through
// transport/meta), and auth.Services admits callers by it. svckit.App wires all of this
// from three settings, -tls-cert, -tls-key and -tls-ca.
package mtls
