// Package meta gives endpoint middleware a transport-neutral view of the call it serves:
// the incoming request's headers (HTTP headers or gRPC metadata), the caller's network
// address and verified client certificate, the principal that authentication middleware
// established, and the call's request id.
//
// Transports make this cheap. The HTTP transport puts the *http.Request in the context
// once per request ([WithSource]); a gRPC server context carries its metadata and peer
// already, so [Header] and [Peer] read them from there and nothing is added per call.
// Middleware calls [Header], [Peer] and [Subject] without knowing which transport served
// the call:
//
//	token := meta.Header(ctx, "Authorization")
//	key := meta.Peer(ctx) // "192.0.2.7"
//
// Every served call has a request id: the transports take the caller's ([RequestIDHeader]
// on HTTP, [RequestIDMetadataKey] on gRPC) when [ValidRequestID] accepts it, generate one
// with [NewRequestID] otherwise, echo it in the response, put it in the context
// ([WithRequestID], read with [RequestID]) and forward it on the calls their clients make
// with that context. Package observe adds it to every log line.
//
// The package depends on the standard library and a few small grpc-go packages only, so
// that the transports, which import it, stay light.
package meta

import (
	"context"
	"crypto/x509"
	"net"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Source is the incoming request of a call as a transport presents it to middleware.
type Source interface {
	// Header returns the first value of the request header key (case-insensitive), or "".
	Header(key string) string
	// Peer returns the caller's network address without the port (an IP address for
	// TCP), or "".
	Peer() string
}

// SourceKey is the context key under which [WithSource] stores a [Source]. [SourceFrom]
// reads it; a transport that gives a served call's context its own type may answer this
// key in the type's Value method instead of adding a context.WithValue per call.
type SourceKey struct{}

// WithSource returns a context that carries the incoming request src. Transports call it
// once per request; gRPC servers need not, as their contexts carry metadata and peer.
func WithSource(ctx context.Context, src Source) context.Context {
	return context.WithValue(ctx, SourceKey{}, src)
}

// SourceFrom returns the Source a transport put in ctx, or nil.
func SourceFrom(ctx context.Context) Source {
	s, _ := ctx.Value(SourceKey{}).(Source)
	return s
}

// Header returns the first value of the incoming request's header key: the HTTP header
// (case-insensitive) of a call served over HTTP, or the gRPC metadata key (lowercased) of
// a call served over gRPC. It returns "" when there is no such header or ctx is not a
// served call's context.
func Header(ctx context.Context, key string) string {
	if s := SourceFrom(ctx); s != nil {
		return s.Header(key)
	}
	v := metadata.ValueFromIncomingContext(ctx, key)
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Peer returns the network address of the caller without its port (for TCP, the IP
// address, as "192.0.2.7" or "2001:db8::1"), or "" when it is unknown. It is the address
// of the immediate peer: a proxy's address when there is one in between.
func Peer(ctx context.Context) string {
	if s := SourceFrom(ctx); s != nil {
		return s.Peer()
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return HostOf(p.Addr.String())
}

// CertSource is implemented by a [Source] whose transport knows the client certificate
// the caller presented, as the HTTP transport's does for requests over TLS.
type CertSource interface {
	// PeerCertificate returns the caller's client certificate as verified by the server's
	// TLS handshake (the leaf of the first verified chain), or nil.
	PeerCertificate() *x509.Certificate
}

// PeerCertificate returns the client certificate of the caller, as the server's TLS
// handshake verified it: the leaf of the first verified chain of the connection the call
// came on, over HTTP (the request's TLS state) or gRPC (the TLS credentials' AuthInfo). It
// returns nil for a plaintext call, a call whose certificate was not verified (a TLS
// configuration that requests but does not verify client certificates) and a context that
// is not a served call's. Nothing is added to the context per call; this reads what the
// transport keeps there anyway.
func PeerCertificate(ctx context.Context) *x509.Certificate {
	if s := SourceFrom(ctx); s != nil {
		if cs, ok := s.(CertSource); ok {
			return cs.PeerCertificate()
		}
		return nil
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil
	}
	var chains [][]*x509.Certificate
	switch ai := p.AuthInfo.(type) {
	case credentials.TLSInfo:
		chains = ai.State.VerifiedChains
	case *credentials.TLSInfo:
		chains = ai.State.VerifiedChains
	default:
		return nil
	}
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil
	}
	return chains[0][0]
}

// HostOf returns the host part of a "host:port" address, or addr itself when it has no
// port.
func HostOf(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return strings.Trim(addr, "[]")
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header of the
// incoming request, or "" when there is none. The scheme is case-insensitive.
func BearerToken(ctx context.Context) string {
	h := Header(ctx, "Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(h[len(prefix):])
}

type principalKey struct{}

// WithPrincipal returns a context that carries p, the authenticated caller of the call
// (authentication middleware sets it; auth.Claims is one).
func WithPrincipal(ctx context.Context, p any) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Principal returns the principal that authentication middleware put in ctx, or nil.
func Principal(ctx context.Context) any { return ctx.Value(principalKey{}) }

// Subject returns the subject (the "sub" claim) of the principal in ctx, or "" when there
// is none. A principal has a subject when it has a GetSubject() (string, error) method,
// as JWT claims do.
func Subject(ctx context.Context) string {
	p, ok := Principal(ctx).(interface{ GetSubject() (string, error) })
	if !ok {
		return ""
	}
	s, err := p.GetSubject()
	if err != nil {
		return ""
	}
	return s
}

type outgoingKey struct{}

// outgoing is one header for outgoing calls, linked to those set before it.
type outgoing struct {
	key, value string
	prev       *outgoing
}

// WithOutgoingHeader returns a context whose calls through svckit clients carry the
// header key with value: an HTTP header, or gRPC metadata (key lowercased). A later value
// for the same key (case-insensitive) replaces an earlier one. Client middleware uses it
// to attach credentials, as in meta.WithOutgoingHeader(ctx, "Authorization", "Bearer "+t).
func WithOutgoingHeader(ctx context.Context, key, value string) context.Context {
	prev, _ := ctx.Value(outgoingKey{}).(*outgoing)
	return context.WithValue(ctx, outgoingKey{}, &outgoing{key: key, value: value, prev: prev})
}

// OutgoingHeaders calls f for each header set with WithOutgoingHeader in ctx, the latest
// value of each key only. Client transports call it for every call.
func OutgoingHeaders(ctx context.Context, f func(key, value string)) {
	o, _ := ctx.Value(outgoingKey{}).(*outgoing)
	for h := o; h != nil; h = h.prev {
		shadowed := false
		for later := o; later != h; later = later.prev {
			if strings.EqualFold(later.key, h.key) {
				shadowed = true
				break
			}
		}
		if !shadowed {
			f(h.key, h.value)
		}
	}
}
