package http

import "net/http"

// Protocols returns the protocols for an http.Server that serves a [Server]: HTTP/1.1,
// HTTP/2 over TLS (negotiated with ALPN "h2") and HTTP/2 in cleartext with prior knowledge
// (h2c, RFC 9113 section 3.3), which platforms and proxies in front of services speak
// (curl --http2-prior-knowledge, Envoy, Cloud Run). The h2c upgrade from HTTP/1.1
// ("Upgrade: h2c"), removed from HTTP/2 by RFC 9113, is not offered.
func Protocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return p
}
