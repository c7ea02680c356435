package meta_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/svckit/svckit/transport/meta"
)

// certSource is a Source whose transport knows a client certificate.
type certSource struct{ cert *x509.Certificate }

func (certSource) Header(string) string                 { return "" }
func (certSource) Peer() string                         { return "" }
func (s certSource) PeerCertificate() *x509.Certificate { return s.cert }

// otherAuth is the AuthInfo of transport security other than TLS.
type otherAuth struct{}

func (otherAuth) AuthType() string { return "insecure" }

type plainSource struct{}

func (plainSource) Header(string) string { return "" }
func (plainSource) Peer() string         { return "" }

func TestPeerCertificate(t *testing.T) {
	leaf, ca := &x509.Certificate{Raw: []byte("leaf")}, &x509.Certificate{Raw: []byte("ca")}
	addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 4711}
	grpcPeer := func(ai credentials.AuthInfo) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{Addr: addr, AuthInfo: ai})
	}
	tests := []struct {
		name string
		ctx  context.Context
		want *x509.Certificate
	}{
		{"not a served call", context.Background(), nil},
		{"gRPC, verified", grpcPeer(credentials.TLSInfo{State: tls.ConnectionState{
			PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, ca}}}}), leaf},
		{"gRPC, presented but not verified", grpcPeer(credentials.TLSInfo{State: tls.ConnectionState{
			PeerCertificates: []*x509.Certificate{leaf}}}), nil},
		{"gRPC, plaintext", grpcPeer(otherAuth{}), nil},
		{"gRPC, no auth info", grpcPeer(nil), nil},
		{"HTTP source with a certificate", meta.WithSource(context.Background(), certSource{leaf}), leaf},
		{"HTTP source without", meta.WithSource(context.Background(), certSource{}), nil},
		{"a source that knows no certificates", meta.WithSource(grpcPeer(credentials.TLSInfo{State: tls.ConnectionState{
			VerifiedChains: [][]*x509.Certificate{{leaf}}}}), plainSource{}), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := meta.PeerCertificate(tc.ctx); got != tc.want {
				t.Fatalf("PeerCertificate = %p, want %p", got, tc.want)
			}
		})
	}
}
