package http

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svckit/svckit/svcerr"
)

// CORS is a server's cross-origin resource sharing policy (the Fetch standard's CORS
// protocol), for browser applications served from other origins. Without [WithCORS] a
// server sends no CORS headers, so browsers keep other origins' scripts from reading its
// responses.
type CORS struct {
	// AllowedOrigins lists the origins whose scripts may call the server, each as a
	// scheme, host and optional port ("https://app.example.com", "http://localhost:3000"),
	// or "*" for any origin.
	AllowedOrigins []string
	// AllowedHeaders lists the request headers a script may send besides the CORS-safelisted
	// ones. The default is Content-Type, Authorization, Idempotency-Key, X-Request-Id,
	// X-Request-Timeout, traceparent, tracestate and baggage.
	AllowedHeaders []string
	// AllowCredentials lets scripts send cookies and HTTP authentication. The server then
	// names the caller's origin rather than "*".
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight's answer; the default is 10
	// minutes.
	MaxAge time.Duration
}

// Validate reports the first origin that is neither "*" nor a scheme://host[:port] origin.
func (c CORS) Validate() error {
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return fmt.Errorf("CORS origin %q: want scheme://host[:port], such as https://app.example.com, or *", o)
		}
	}
	return nil
}

// WithCORS answers CORS requests from the origins of c: a preflight (OPTIONS with
// Access-Control-Request-Method) on a routed path from an allowed origin gets 204 with the
// path's methods and the allowed headers, from another origin 403 (problem+json); other
// requests from an allowed origin get Access-Control-Allow-Origin and expose
// X-Request-Id, Retry-After and WWW-Authenticate. It panics if c does not validate.
func WithCORS(c CORS) ServerOption {
	if err := c.Validate(); err != nil {
		panic("svckit/transport/http: " + err.Error())
	}
	p := &corsPolicy{origins: make(map[string]bool, len(c.AllowedOrigins)), credentials: c.AllowCredentials}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			p.any = true
		} else {
			p.origins[strings.ToLower(o)] = true
		}
	}
	headers := c.AllowedHeaders
	if headers == nil {
		headers = []string{"Content-Type", "Authorization", "Idempotency-Key", "X-Request-Id", TimeoutHeader,
			"Traceparent", "Tracestate", "Baggage"}
	}
	p.headers = strings.Join(headers, ", ")
	maxAge := c.MaxAge
	if maxAge <= 0 {
		maxAge = 10 * time.Minute
	}
	p.maxAge = strconv.Itoa(int(maxAge / time.Second))
	return func(s *Server) {
		if len(c.AllowedOrigins) == 0 {
			s.cors = nil
			return
		}
		s.cors = p
	}
}

type corsPolicy struct {
	any         bool
	origins     map[string]bool // lower-cased
	credentials bool
	headers     string
	maxAge      string
}

func (p *corsPolicy) allows(origin string) bool {
	return p.any || p.origins[strings.ToLower(origin)]
}

// serve adds the CORS headers for a request from origin, and answers it when it is a
// preflight. It reports whether it answered.
func (p *corsPolicy) serve(s *Server, w http.ResponseWriter, r *http.Request, origin string) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	allowed := p.allows(origin)
	if allowed {
		if p.any && !p.credentials {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if p.credentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	reqMethod := r.Header.Get("Access-Control-Request-Method")
	if r.Method != http.MethodOptions || reqMethod == "" {
		if allowed {
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, WWW-Authenticate")
		}
		return false
	}
	// A preflight.
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	ctx := s.requestContext(w, r)
	if !allowed {
		h.Del("Access-Control-Allow-Origin")
		reject(ctx, s.unmatch, w, r, WithStatus(http.StatusForbidden, svcerr.Errorf(svcerr.PermissionDenied,
			"origin %q may not call this service", truncate(origin, 128))))
		return true
	}
	pm := s.methodsFor(r)
	if pm == nil {
		return false // 404 from the router
	}
	if !slices.Contains(pm.methods, reqMethod) {
		h.Del("Access-Control-Allow-Origin")
		h.Del("Access-Control-Allow-Credentials")
		h.Set("Allow", strings.Join(pm.methods, ", "))
		reject(ctx, s.unmatch, w, r, WithStatus(http.StatusMethodNotAllowed, svcerr.Errorf(svcerr.InvalidArgument,
			"method %s is not allowed on %s", truncate(reqMethod, 32), truncate(r.URL.Path, 256))))
		return true
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(pm.methods, ", "))
	h.Set("Access-Control-Allow-Headers", p.headers)
	h.Set("Access-Control-Max-Age", p.maxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
