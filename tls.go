package svckit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	grpcgo "google.golang.org/grpc"

	"github.com/svckit/svckit/config"
	"github.com/svckit/svckit/mtls"
	sgrpc "github.com/svckit/svckit/transport/grpc"
	shttp "github.com/svckit/svckit/transport/http"
)

// validateTLS checks the mTLS settings: the certificate, key and CA files all three or
// none, and a known HTTP mode.
func (c *Config) validateTLS() error {
	files := []struct{ field, value string }{{"TLSCert", c.TLSCert}, {"TLSKey", c.TLSKey}, {"TLSCA", c.TLSCA}}
	set := 0
	for _, f := range files {
		if f.value != "" {
			set++
		}
	}
	if set > 0 && set < len(files) {
		for _, f := range files {
			if f.value == "" {
				return &config.FieldError{Field: f.field, Err: errors.New("is missing: -tls-cert, -tls-key and -tls-ca are set together or not at all")}
			}
		}
	}
	switch c.TLSHTTP {
	case "mtls", "plain":
	default:
		return &config.FieldError{Field: "TLSHTTP", Err: errors.New("must be mtls or plain")}
	}
	if set == 0 && len(c.TLSAllow) > 0 {
		return &config.FieldError{Field: "TLSAllow", Err: errors.New("needs -tls-cert, -tls-key and -tls-ca")}
	}
	return nil
}

// newTLSSource loads the mTLS files of c, or returns nil when none are configured.
func newTLSSource(ctx context.Context, name string, c *Config, logger *slog.Logger) (*mtls.Source, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	src, err := mtls.NewSource(c.TLSCert, c.TLSKey, c.TLSCA, mtls.WithLogger(logger), mtls.WithAllowedPeers(c.TLSAllow...))
	if err != nil {
		return nil, fmt.Errorf("svckit: %w", err)
	}
	id, cert := src.Identity(), src.Certificate()
	attrs := []any{slog.String("identity", id.URI), slog.String("serial", cert.SerialNumber.Text(16)),
		slog.Time("not_after", cert.NotAfter), slog.String("http", c.TLSHTTP)}
	logger.InfoContext(ctx, "mTLS on", attrs...)
	if id.Service != name {
		logger.WarnContext(ctx, "the mTLS certificate names another service", slog.String("service", name), slog.String("identity", id.URI))
	}
	return src, nil
}

// httpListener wraps the HTTP listener in TLS that requires client certificates, under
// mTLS unless -tls-http is plain.
func (a *App) httpListener(ln net.Listener) net.Listener {
	if a.tls == nil || a.cfg.TLSHTTP == "plain" {
		return ln
	}
	return tls.NewListener(ln, a.tls.ServerTLS())
}

// grpcServerOptions returns the TLS credentials of the gRPC server under mTLS.
func (a *App) grpcServerOptions() []grpcgo.ServerOption {
	if a.tls == nil {
		return nil
	}
	return []grpcgo.ServerOption{sgrpc.ServerCredentials(a.tls.ServerTLS())}
}

// TLS returns the source of the service's mTLS certificate, or nil when -tls-cert,
// -tls-key and -tls-ca are not set. The App reloads it while it runs.
func (a *App) TLS() *mtls.Source { return a.tls }

// ClientTLS returns the TLS configuration for calls to other services under mTLS: it
// presents this service's current certificate and accepts servers whose certificate the
// current CA bundle verifies and, when servers are given, whose identity names one of
// them. It returns nil when mTLS is not configured.
func (a *App) ClientTLS(servers ...string) *tls.Config {
	if a.tls == nil {
		return nil
	}
	return a.tls.ClientTLS(servers...)
}

// DialCredentials returns the transport credentials for gRPC connections to other
// services: mTLS as [App.ClientTLS] describes when it is configured, plaintext otherwise.
// Use it in place of insecure.NewCredentials:
//
//	cc, err := grpc.NewClient(addr, app.DialCredentials("orders"))
func (a *App) DialCredentials(servers ...string) grpcgo.DialOption {
	return sgrpc.DialCredentials(a.ClientTLS(servers...))
}

// HTTPClient returns a client for calls to other services' HTTP listeners: under mTLS it
// presents this service's certificate (address the services with https://), otherwise it
// is plain. Its transport is shared by every client HTTPClient returns; pass it to
// transport/http's NewClient with WithHTTPClient.
func (a *App) HTTPClient() *http.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.clientTr == nil {
		a.clientTr = shttp.NewTransport(a.ClientTLS())
	}
	return &http.Client{Transport: a.clientTr}
}
