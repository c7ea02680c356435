package http

import (
	"crypto/tls"
	"net/http"
)

// NewTransport returns the transport a [Client] uses by default — net/http's default
// transport keeping up to 64 idle connections per host — with TLS configured by cfg,
// such as the config of mtls.Source.ClientTLS (nil: the default TLS settings). Share one
// transport between the clients of a process so that they share connections.
func NewTransport(cfg *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	if cfg != nil {
		t.TLSClientConfig = cfg.Clone()
	}
	return t
}

// WithTLSConfig makes the client's default transport use cfg for https:// base URLs, for
// example the config of mtls.Source.ClientTLS, so that the client presents the service's
// certificate. It has no effect together with [WithHTTPClient]; give that client a
// transport from [NewTransport] instead. Under mTLS a server that refuses the certificate
// makes calls fail with svcerr.Unavailable, wrapping the TLS error.
func WithTLSConfig(cfg *tls.Config) ClientOption { return func(c *Client) { c.tls = cfg } }
