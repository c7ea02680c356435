package grpc

import (
	"crypto/tls"

	grpcgo "google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// DialCredentials returns the dial option for a client connection secured with cfg, such
// as the config of mtls.Source.ClientTLS, or a plaintext connection when cfg is nil:
//
//	cc, err := grpc.NewClient(addr, sgrpc.DialCredentials(src.ClientTLS()))
//
// Under mTLS a server that refuses the client's certificate makes calls fail with
// codes.Unavailable (svcerr.Unavailable through a [Client]).
func DialCredentials(cfg *tls.Config) grpcgo.DialOption {
	if cfg == nil {
		return grpcgo.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpcgo.WithTransportCredentials(credentials.NewTLS(cfg))
}

// ServerCredentials returns the server option that serves TLS with cfg, such as the
// config of mtls.Source.ServerTLS, for [NewGRPCServer]. Endpoints then read the caller's
// verified certificate with meta.PeerCertificate, and its service identity with
// mtls.PeerFromContext.
func ServerCredentials(cfg *tls.Config) grpcgo.ServerOption {
	return grpcgo.Creds(credentials.NewTLS(cfg))
}
