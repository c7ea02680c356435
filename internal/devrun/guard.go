package devrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// The checks every request to the collector's and dashboard's listener passes. The
// listener is on loopback, but a web page the developer opens can still send requests to
// it: a cross-origin page by a form or fetch, and a DNS-rebinding page (a name of the
// attacker's that first points at the attacker's server and then at 127.0.0.1) even as
// its own origin. The Host header tells the rebinding page apart (it names the
// attacker's domain), and Origin and Sec-Fetch-Site tell the cross-origin page apart.

// ErrForeignHost is matched (errors.Is) by CheckHost's error for a request whose Host
// header names neither a loopback name nor the listener's own address.
var ErrForeignHost = errors.New("foreign Host")

// ErrCrossOrigin is matched (errors.Is) by CheckSameOrigin's error for a request that a
// browser sent on behalf of a page of another origin.
var ErrCrossOrigin = errors.New("cross-origin request")

// CheckHost returns an error matching ErrForeignHost unless the request's Host header
// names the listener it arrived on: localhost, 127.0.0.1, [::1] or the IP address of the
// connection's local end, with the listener's port (a Host without a port only on port
// 80). A request not served by net/http's server (no http.LocalAddrContextKey in its
// context) has no listener to compare with and is refused too.
func CheckHost(r *http.Request) error {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return fmt.Errorf("%w: no local address to check Host %q against", ErrForeignHost, r.Host)
	}
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil {
		return fmt.Errorf("%w: local address %q: %w", ErrForeignHost, local, err)
	}
	host, port := r.Host, "80"
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		host, port = h, p
	} else if strings.Contains(strings.Trim(r.Host, "[]"), ":") && !strings.HasPrefix(r.Host, "[") {
		return fmt.Errorf("%w: malformed Host %q", ErrForeignHost, r.Host)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if port != lport || !localName(host, lhost) {
		return fmt.Errorf("%w: Host %q is not this listener's address (%s) or a loopback name with its port", ErrForeignHost, r.Host, local)
	}
	return nil
}

// localName reports whether host (without brackets) is a loopback name or equals the
// listener's own IP address lhost.
func localName(host, lhost string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false // a DNS name other than localhost: possibly rebound
	}
	if ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback) {
		return true
	}
	lip := net.ParseIP(lhost)
	return lip != nil && !lip.IsUnspecified() && ip.Equal(lip)
}

// CheckSameOrigin returns an error matching ErrCrossOrigin when a browser sent the
// request for a page of another origin: an Origin header other than the request's own
// origin (scheme and Host; "null" included), or a Sec-Fetch-Site header other than
// "same-origin" ("same-site" is another port of 127.0.0.1, "cross-site" any web page,
// "none" a navigation the user typed, which needs no API). Requests without either
// header — curl, the services' OTLP exporters — pass; check Host first (CheckHost), since
// a DNS-rebinding page's requests are same-origin to its browser.
func CheckSameOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		if !strings.EqualFold(o, scheme+"://"+r.Host) {
			return fmt.Errorf("%w: Origin %q is not %s://%s", ErrCrossOrigin, o, scheme, r.Host)
		}
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" {
		return fmt.Errorf("%w: Sec-Fetch-Site %q", ErrCrossOrigin, s)
	}
	return nil
}

// LocalOnly returns h behind the checks for every route of the collector's and
// dashboard's listener: a request whose Host is not the listener's own (CheckHost) is
// refused, and so is a request other than GET and HEAD sent for a page of another origin
// (CheckSameOrigin) — the services' OTLP exports (POST /v1/traces) and JWKS fetches send
// Host as the address they were given and no Origin, and pass. Refusals are 403 with a
// JSON body {"error": "..."}.
func LocalOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := CheckHost(r)
		if err == nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = CheckSameOrigin(r)
		}
		if err != nil {
			Refuse(w, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Refuse answers a request that a check refused: 403 with {"error": err's text}.
func Refuse(w http.ResponseWriter, err error) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusForbidden)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "refused: " + err.Error()}) // the client may be gone
}
