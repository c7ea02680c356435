package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/svckit/svckit/internal/devrun"
)

// The dashboard acts with the runner's powers: it kills processes and calls services with
// the runner's certificate and the development user's token. Besides the checks of
// devrun.LocalOnly on every request (Host, and Origin for anything but GET and HEAD), a
// request that changes something — any method but GET and HEAD, and every request
// through /api/call/ — must come from the dashboard's own page or from someone who holds
// the run's secret (see WithSecret):
//
//   - the page: the session cookie (set when the page is opened with ?k=SECRET) and the
//     header X-Svckit-Dashboard: 1, which a page of another origin cannot send without a
//     CORS preflight that the dashboard never grants;
//   - curl and scripts: the header X-Svckit-Secret: SECRET.
//
// A request with an Origin other than the dashboard's own, or a Sec-Fetch-Site other than
// same-origin, is refused even with the secret.

// SecretHeader is the header that carries the run's secret in requests from outside the
// browser: curl -H "X-Svckit-Secret: $SECRET" -X POST …/api/instances/orders-1/kill.
const SecretHeader = "X-Svckit-Secret"

// PageHeader is the header the dashboard's page sends with every API request; with the
// session cookie it authorizes what changes something. A page of another origin cannot
// send it without a CORS preflight, which the dashboard refuses.
const PageHeader = "X-Svckit-Dashboard"

// SecretParam is the query parameter of the URL that opens the dashboard with the secret
// (SecretURL): the page's answer sets the session cookie and moves to / without it.
const SecretParam = "k"

// NewSecret returns a new random secret for one run of the dashboard: 26 base32
// characters, 128 bits from crypto/rand.
func NewSecret() string {
	return rand.Text()
}

// SecretURL returns the dashboard's address base ("http://127.0.0.1:7070") with the
// secret, the URL `svckit dev` prints: opened in a browser, it gives the page the right
// to change things (kill, the API explorer's calls) for the browser's session.
func SecretURL(base, secret string) string {
	return strings.TrimSuffix(base, "/") + "/?" + SecretParam + "=" + url.QueryEscape(secret)
}

// WithSecret sets the run's secret, which requests that change something must carry (in
// the session cookie the secret URL sets, or in the X-Svckit-Secret header). Without it
// the dashboard makes a random secret that nobody knows: it shows everything and changes
// nothing.
func WithSecret(secret string) Option {
	return func(c *config) { c.secret = secret }
}

// errNoSecret is the refusal of a request that changes something without the secret.
var errNoSecret = errors.New("this request needs the dashboard's secret: open the URL `svckit dev` printed " +
	"(…/?k=SECRET) in the browser, or send the header " + SecretHeader + ": SECRET")

// cookieName is the session cookie of the dashboard on port: cookies are not kept apart
// by port, so two dashboards on one machine would otherwise overwrite each other's.
func cookieName(r *http.Request) string {
	port := "80"
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			port = p
		}
	}
	return "svckit_dev_" + port
}

// equalSecret compares in constant time.
func (d *dash) equalSecret(s string) bool {
	return s != "" && subtle.ConstantTimeCompare([]byte(s), []byte(d.cfg.secret)) == 1
}

// sessionOK reports whether the request carries the session cookie of this run.
func (d *dash) sessionOK(r *http.Request) bool {
	c, err := r.Cookie(cookieName(r))
	return err == nil && d.equalSecret(c.Value)
}

// authorized reports whether r may change something: the secret in its header, or the
// session cookie with the page's header.
func (d *dash) authorized(r *http.Request) bool {
	if d.equalSecret(r.Header.Get(SecretHeader)) {
		return true
	}
	return r.Header.Get(PageHeader) == "1" && d.sessionOK(r)
}

// changes reports whether the request changes something: any method but GET and HEAD,
// and everything proxied to a service (whose GET routes are the service's business).
func changes(r *http.Request) bool {
	return (r.Method != http.MethodGet && r.Method != http.MethodHead) || strings.HasPrefix(r.URL.Path, "/api/call/")
}

// guard wraps the dashboard's routes: devrun's Host check everywhere; no cross-origin
// browser request to the API (reads included: a page of another origin has no business
// there, and some reads scan every stored line); and the secret for whatever changes
// something.
func (d *dash) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := devrun.CheckHost(r)
		if err == nil && (strings.HasPrefix(r.URL.Path, "/api/") || changes(r)) {
			err = devrun.CheckSameOrigin(r)
		}
		if err == nil && changes(r) && !d.authorized(r) {
			err = errNoSecret
		}
		if err != nil {
			devrun.Refuse(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// page serves the static files; GET /?k=SECRET sets the session cookie and redirects to
// / (the hash, if any, stays). A wrong secret is refused: it is an earlier run's link.
func (d *dash) page(files http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !q.Has(SecretParam) || r.URL.Path != "/" {
			files.ServeHTTP(w, r)
			return
		}
		if !d.equalSecret(q.Get(SecretParam)) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "This link's secret is not this run's: `svckit dev` prints a new link each time it starts.")
			return
		}
		http.SetCookie(w, &http.Cookie{Name: cookieName(r), Value: d.cfg.secret, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode})
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

// Session is the answer of GET /api/session.
type Session struct {
	// Authorized says the browser's session may change things (kill, calls from the API
	// explorer): it opened the dashboard with the secret URL of this run.
	Authorized bool `json:"authorized"`
}

func (d *dash) session(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Session{Authorized: d.sessionOK(r) || d.equalSecret(r.Header.Get(SecretHeader))})
}
